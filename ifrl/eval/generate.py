"""Generate evaluation responses with a rollout engine (greedy by default)."""

from __future__ import annotations

import sys
import time

__all__ = ["chat_messages", "generate_responses", "strip_reasoning"]


def chat_messages(row: dict, system_prompt: str | None = None) -> list[dict]:
    """The chat turns for a row: its own ``messages`` if it has them, else one user turn."""
    turns = [dict(m) for m in row.get("messages") or [{"role": "user", "content": row["prompt"]}]]
    if system_prompt and not any(t["role"] == "system" for t in turns):
        turns.insert(0, {"role": "system", "content": system_prompt})
    return turns


def strip_reasoning(text: str, marker: str | None) -> str:
    """Text after the last ``marker`` (e.g. ``</think>``); without the marker, ``""`` (no answer)."""
    if not marker:
        return text
    idx = text.rfind(marker)
    return text[idx + len(marker):].lstrip("\n") if idx >= 0 else ""


def generate_responses(engine, rows: list[dict], *, temperature: float = 0.0, top_p: float = 1.0,
                       max_new_tokens: int = 512, seed: int = 0, system_prompt: str | None = None,
                       batch_size: int = 16, progress: bool = True) -> tuple[list[str], list[int]]:
    """One response per row; returns (texts, response token counts).

    ``engine`` follows ``ifrl.rollout.RolloutEngine``; temperature 0 asks it for greedy decoding.
    Rows go in chunks of ``batch_size`` so progress shows and memory stays bounded.
    """
    from ifrl.rollout import SamplingParams

    # Batches of similar prompt length waste less compute on left padding; results go back in
    # the original order. Greedy answers do not depend on the batch a prompt lands in.
    order = sorted(range(len(rows)), key=lambda i: (len(rows[i].get("prompt", "")), i))
    rows = [rows[i] for i in order]
    texts: list[str] = []
    lengths: list[int] = []
    t0 = time.perf_counter()
    for start in range(0, len(rows), batch_size):
        chunk = rows[start:start + batch_size]
        sampling = SamplingParams(temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens,
                                  seed=seed + start)
        prompts = [chat_messages(r, system_prompt) for r in chunk]
        completions = engine.generate(prompts, 1, sampling)
        completions = sorted(completions, key=lambda c: c.prompt_index)
        texts.extend(c.text for c in completions)
        lengths.extend(len(c.response_ids) for c in completions)
        if progress:
            done = len(texts)
            rate = done / max(time.perf_counter() - t0, 1e-9)
            print(f"  generated {done}/{len(rows)} ({rate:.2f} prompts/s)", file=sys.stderr, flush=True)
    back = [0] * len(order)
    for pos, i in enumerate(order):
        back[i] = pos
    return [texts[back[i]] for i in range(len(order))], [lengths[back[i]] for i in range(len(order))]

