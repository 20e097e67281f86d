"""Distributed, resumable prompt sampler: every prompt exactly once per epoch across all ranks.

The global order of an epoch is a seeded permutation (same on every rank). A step takes the next
``prompts_per_step`` indices of that order; rank r keeps the r-th contiguous slice. An epoch
whose length is not a multiple of ``prompts_per_step`` ends with a short final step whose slice
may differ in size between ranks by at most one prompt (so nothing is dropped or repeated).
The state is two integers (epoch, offset), saved in checkpoints.
"""

from __future__ import annotations

import torch


class PromptSampler:
    def __init__(self, num_prompts: int, prompts_per_step: int, rank: int, world_size: int,
                 seed: int = 0, shuffle: bool = True):
        if num_prompts < 1:
            raise ValueError("the training data has no rows. Add rows to data.train_files.")
        if prompts_per_step % world_size:
            raise ValueError(f"prompts_per_step={prompts_per_step} must be a multiple of the world size "
                             f"{world_size}. Set prompts_per_step to e.g. {world_size * max(1, prompts_per_step // world_size)}.")
        self.num_prompts, self.prompts_per_step = num_prompts, prompts_per_step
        self.rank, self.world_size, self.seed, self.shuffle = rank, world_size, seed, shuffle
        self.epoch, self.offset = 0, 0

    def _order(self, epoch: int) -> list[int]:
        if not self.shuffle:
            return list(range(self.num_prompts))
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(self.num_prompts, generator=g).tolist()

    def next_global(self) -> tuple[list[int], int]:
        """The next step's global prompt indices (all ranks) and the epoch they come from."""
        order = self._order(self.epoch)
        take = order[self.offset:self.offset + self.prompts_per_step]
        epoch = self.epoch
        self.offset += len(take)
        if self.offset >= self.num_prompts:
            self.epoch, self.offset = self.epoch + 1, 0
        return take, epoch

    def split(self, global_indices: list[int], rank: int | None = None) -> list[int]:
        r = self.rank if rank is None else rank
        n, w = len(global_indices), self.world_size
        lo = r * n // w
        hi = (r + 1) * n // w
        return global_indices[lo:hi]

    def next(self) -> list[int]:
        """This rank's prompt indices for the next step."""
        take, _ = self.next_global()
        return self.split(take)

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "offset": self.offset, "num_prompts": self.num_prompts, "seed": self.seed}

    def load_state_dict(self, state: dict) -> None:
        if state["num_prompts"] != self.num_prompts:
            raise ValueError(f"checkpoint was written for {state['num_prompts']} prompts but the data has "
                             f"{self.num_prompts}. Resume with the same data.train_files (and data.max_rows).")
        self.epoch, self.offset = int(state["epoch"]), int(state["offset"])
