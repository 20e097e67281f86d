"""The rollout-engine interface shared by every backend.

Prompts enter as chat messages (``[{"role": "user", "content": ...}]``); the engine applies the
tokenizer's chat template itself so that a remote server (SGLang) and the local backend see the
same token ids. ``generate`` returns ``n`` completions per prompt, grouped: prompt 0's n samples
first, then prompt 1's, and so on. Response ids are exactly what the policy produced (ending with
EOS when it stopped on EOS), which is what the trainer scores log-probs on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Protocol

import torch


@dataclass
class SamplingParams:
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    max_new_tokens: int = 64
    stop_strings: list[str] = field(default_factory=list)
    seed: int = 0
    """Sampling is a pure function of (weights, prompts, seed): same seed -> same responses."""


@dataclass
class Completion:
    prompt_index: int
    prompt_ids: list[int]
    response_ids: list[int]
    text: str
    finish_reason: str  # "eos" | "stop" | "length"


class RolloutEngine(Protocol):
    def generate(self, prompts: list[list[dict]], n: int, sampling: SamplingParams) -> list[Completion]: ...

    def update_weights(self, named_tensors: Iterable[tuple[str, torch.Tensor]]) -> None: ...

    def release(self) -> None:
        """Free accelerator memory (weights, KV cache) while the trainer updates."""

    def resume(self) -> None:
        """Re-acquire what release() freed."""


def encode_prompts(tokenizer, prompts: list[list[dict]], max_prompt_tokens: int) -> list[list[int]]:
    """Apply the chat template (with the generation prompt) and left-truncate to the budget."""
    out = []
    for messages in prompts:
        ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
        if hasattr(ids, "keys"):  # transformers 5 may return a BatchEncoding
            ids = ids["input_ids"]
        ids = list(ids)
        if len(ids) > max_prompt_tokens:
            ids = ids[-max_prompt_tokens:]
        out.append(ids)
    return out
