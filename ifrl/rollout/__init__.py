"""Rollout engines: turn chat prompts into sampled responses (token ids + text).

``base.RolloutEngine`` is the interface the trainer codes against; ``hf.HFEngine`` is the
transformers backend (CPU and GPU). A server-based backend (SGLang) implements the same four
methods: ``generate``, ``update_weights``, ``release``, ``resume``.
"""

from ifrl.rollout.base import Completion, RolloutEngine, SamplingParams, encode_prompts

__all__ = ["Completion", "RolloutEngine", "SamplingParams", "encode_prompts", "make_engine"]


def make_engine(backend: str, model, tokenizer, **kwargs) -> RolloutEngine:
    if backend == "hf":
        from ifrl.rollout.hf import HFEngine

        return HFEngine(model, tokenizer, **kwargs)
    raise ValueError(f"rollout.backend={backend!r} is not available. Use 'hf'.")
