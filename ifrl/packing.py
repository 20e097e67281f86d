"""Padding-free packing of (prompt + response) sequences into token-budget micro-batches.

A micro-batch is one row of concatenated sequences: ``input_ids[1, T]`` with ``position_ids``
restarting at 0 for every sequence (the attention implementation derives the block-diagonal
mask from the resets). Only response tokens carry labels. For every label position the packer
records which sample and which response token it is (``sample_T``, ``resp_pos_T``), so per-token
quantities held as padded ``[B, R]`` tensors (old/ref log-probs, advantages) are gathered with
one indexing op.

Micro-batch counts must match across ranks (each forward/backward runs FSDP collectives), so
the trainer pads short ranks with ``empty_micro_batch`` (one token, no label, zero loss weight).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class MicroBatch:
    input_ids_T: torch.Tensor      # [T] long
    position_ids_T: torch.Tensor   # [T] long
    labels_T: torch.Tensor         # [T] long, -100 where no response token is predicted
    sample_T: torch.Tensor         # [T] long, sample index of each label position (0 where none)
    resp_pos_T: torch.Tensor       # [T] long, response-token index of each label position
    samples: list[int]             # sample indices in this micro-batch

    @property
    def num_tokens(self) -> int:
        return int(self.input_ids_T.numel())


def plan_micro_batches(lengths: list[int], token_budget: int, max_seqs: int = 0) -> list[list[int]]:
    """Group sequence indices into micro-batches of at most ``token_budget`` tokens.

    First-fit decreasing, deterministic (ties broken by index). A sequence longer than the
    budget gets a micro-batch of its own. Each group is returned in ascending index order.
    """
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    bins: list[list[int]] = []
    loads: list[int] = []
    for i in order:
        placed = False
        for b in range(len(bins)):
            if loads[b] + lengths[i] <= token_budget and (max_seqs <= 0 or len(bins[b]) < max_seqs):
                bins[b].append(i)
                loads[b] += lengths[i]
                placed = True
                break
        if not placed:
            bins.append([i])
            loads.append(lengths[i])
    return [sorted(b) for b in bins]


def pack(prompt_ids: list[list[int]], response_ids: list[list[int]], samples: list[int]) -> MicroBatch:
    """Concatenate the given samples into one padding-free row."""
    ids, pos, labels, sample_idx, resp_pos = [], [], [], [], []
    for s in samples:
        p, r = prompt_ids[s], response_ids[s]
        seq = p + r
        ids.extend(seq)
        pos.extend(range(len(seq)))
        # Position t predicts token t+1: the last prompt token predicts response token 0.
        lab = [-100] * len(seq)
        sidx = [0] * len(seq)
        rpos = [0] * len(seq)
        for j in range(len(r)):
            t = len(p) - 1 + j
            lab[t] = r[j]
            sidx[t] = s
            rpos[t] = j
        labels.extend(lab)
        sample_idx.extend(sidx)
        resp_pos.extend(rpos)
    as_long = lambda x: torch.tensor(x, dtype=torch.long)  # noqa: E731
    return MicroBatch(as_long(ids), as_long(pos), as_long(labels), as_long(sample_idx), as_long(resp_pos), list(samples))


def empty_micro_batch(pad_token_id: int) -> MicroBatch:
    z = torch.zeros(1, dtype=torch.long)
    return MicroBatch(torch.full((1,), pad_token_id, dtype=torch.long), z.clone(), torch.full((1,), -100), z.clone(), z.clone(), [])


def build_micro_batches(prompt_ids: list[list[int]], response_ids: list[list[int]], samples: list[int],
                        token_budget: int, max_seqs: int = 0) -> list[MicroBatch]:
    lengths = [len(prompt_ids[s]) + len(response_ids[s]) for s in samples]
    plan = plan_micro_batches(lengths, token_budget, max_seqs)
    return [pack(prompt_ids, response_ids, [samples[i] for i in group]) for group in plan]
