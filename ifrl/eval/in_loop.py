"""Greedy evaluation inside the training loop (``logging.eval_every``), one line of eval.jsonl each.

The eval rows are split across ranks (``rows[rank::world]``). Each rank generates its share with
the rollout engine (``generate_responses``, temperature 0) and scores it with ``score_responses``
(the verifier registry, strict and loose); one all-reduce of a fixed-size vector of counts (and
of per-row word counts, zero at the other ranks' rows) then gives every rank the totals. Every
rank therefore runs exactly one collective per evaluation, whatever its share.
"""

from __future__ import annotations

import statistics
import time

import torch

from ifrl.eval.generate import generate_responses, strip_reasoning
from ifrl.eval.scoring import MODES, score_responses, word_counts

__all__ = ["load_eval_files", "evaluate", "format_line"]

# Sums gathered from every rank, in this order, ahead of the per-row word counts.
_COUNTS = ("prompts", *(f"{k}_{m}" for m in MODES for k in ("prompts_scored", "prompt_pass", "instructions_scored",
                                                             "instruction_pass")))


def load_eval_files(files: list[str], limit: int = 0) -> list[dict]:
    """The rows of ``files`` in order (``ifrl eval``'s loader: any row format, or ifeval / ifbench)."""
    from ifrl.eval.cli import load_eval_rows

    rows = [r for f in files for r in load_eval_rows(str(f))]
    return rows[:limit] if limit else rows


def _local_counts(engine, rows: list[dict], mine: list[int], *, max_new_tokens: int, batch_size: int,
                  system_prompt: str | None, answer_after: str | None) -> torch.Tensor:
    vec = torch.zeros(len(_COUNTS) + len(rows), dtype=torch.float64)
    if not mine:
        return vec
    texts, _ = generate_responses(engine, [rows[i] for i in mine], temperature=0.0, max_new_tokens=max_new_tokens,
                                  system_prompt=system_prompt, batch_size=batch_size, progress=False)
    answers = [strip_reasoning(t, answer_after) for t in texts]
    m = score_responses([rows[i] for i in mine], answers).metrics()
    got = {"prompts": len(mine)}
    for mode in MODES:
        for level, n_key in (("prompt", "prompts_scored"), ("instruction", "instructions_scored")):
            n = m[f"{n_key}_{mode}"]
            got[f"{n_key}_{mode}"] = n
            # metrics() reports pass / n; n * rate recovers the integer pass count exactly.
            got[f"{level}_pass_{mode}"] = round((m[f"{level}_{mode}"] or 0.0) * n)
    vec[:len(_COUNTS)] = torch.tensor([float(got[k]) for k in _COUNTS], dtype=torch.float64)
    vec[len(_COUNTS) + torch.tensor(mine)] = torch.tensor(word_counts(answers), dtype=torch.float64)
    return vec


def evaluate(engine, rows: list[dict], step: int, *, rank: int, world_size: int, max_new_tokens: int,
             batch_size: int = 16, system_prompt: str | None = None, answer_after: str | None = None) -> dict:
    """Evaluate greedily on every rank's share; collective. Returns the eval.jsonl record (all ranks)."""
    from ifrl.dist import all_reduce_sum

    t0 = time.perf_counter()
    engine.resume()
    vec = _local_counts(engine, rows, list(range(rank, len(rows), world_size)), max_new_tokens=max_new_tokens,
                        batch_size=batch_size, system_prompt=system_prompt, answer_after=answer_after)
    engine.release()
    vec = all_reduce_sum(vec)
    c = dict(zip(_COUNTS, vec[:len(_COUNTS)].tolist()))
    words = vec[len(_COUNTS):].tolist()
    rec = {"step": step, "prompts": int(c["prompts"])}
    for level, n_key in (("prompt", "prompts_scored"), ("instruction", "instructions_scored")):
        for mode in MODES:
            rec[f"{level}_{mode}"] = c[f"{level}_pass_{mode}"] / max(c[f"{n_key}_{mode}"], 1.0)
    rec["prompts_scored"] = int(c["prompts_scored_strict"])  # prompts whose every constraint is checkable
    rec["instructions_scored"] = int(c["instructions_scored_strict"])
    rec["response_words_mean"] = statistics.fmean(words) if words else 0.0
    rec["response_words_median"] = float(statistics.median(words)) if words else 0.0
    rec["eval_time_s"] = time.perf_counter() - t0
    return rec


def format_line(rec: dict) -> str:
    return (f"eval {rec['step']:>5} | prompt strict {rec['prompt_strict']:.3f} loose {rec['prompt_loose']:.3f}"
            f" | instruction strict {rec['instruction_strict']:.3f} loose {rec['instruction_loose']:.3f}"
            f" | words mean {rec['response_words_mean']:.1f} median {rec['response_words_median']:.1f}"
            f" | {rec['prompts']} prompts | {rec['eval_time_s']:.1f}s")
