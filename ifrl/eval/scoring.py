"""Score responses against instruction rows: strict and loose verdicts, IFEval's accuracies.

The verdicts come from the verifier registry (``ifrl.constraints.verify_batch``); this module
only lines responses up with prompts, aggregates, and writes IFEval's output files:
``eval_results_strict.jsonl`` / ``eval_results_loose.jsonl`` (``instruction_id_list``,
``prompt``, ``response``, ``follow_all_instructions``, ``follow_instruction_list``) and
``responses.jsonl`` (``prompt``, ``response``; IFEval's input_response_data format).

Instructions whose id the registry does not know (e.g. IFBench's out-of-domain ids before
they are implemented) are not guessed: they are counted as *unchecked*, left out of the
accuracies, and listed in the report; a prompt with any unchecked id is left out of the
prompt-level accuracy.
"""

from __future__ import annotations

import json
import statistics
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["EvalResult", "score_responses", "length_stats", "load_result", "word_counts"]

MODES = ("strict", "loose")


def _registry_ids() -> set[str] | None:
    try:
        from ifrl.constraints import known_ids
    except ImportError:
        return None
    return set(known_ids())


def word_counts(responses: list[str]) -> list[int]:
    """Words per response (whitespace split), the unit of every response-length statistic here."""
    return [len(r.split()) for r in responses]


def length_stats(responses: list[str]) -> dict:
    """Word counts of the responses (whitespace split) and the share of answers that say one
    sentence or line twice (``quality:no_repetition`` fails): the collapse checks next to the scores."""
    from ifrl.constraints.families.quality import repeated_piece

    words = word_counts(responses)
    if not words:
        return {"n": 0}
    ordered = sorted(words)
    return {
        "n": len(words),
        "mean_words": round(statistics.fmean(words), 2),
        "median_words": float(statistics.median(words)),
        "p10_words": float(ordered[int(0.1 * (len(ordered) - 1))]),
        "p90_words": float(ordered[int(0.9 * (len(ordered) - 1))]),
        "max_words": max(words),
        "frac_le_3_words": round(sum(w <= 3 for w in words) / len(words), 4),
        "frac_empty": round(sum(not r.strip() for r in responses) / len(responses), 4),
        "frac_repeating": round(sum(repeated_piece(r) is not None for r in responses) / len(responses), 4),
    }


@dataclass
class EvalResult:
    """Verdicts for one set of responses, plus everything the report needs."""

    name: str
    rows: list[dict]
    responses: list[str]
    verdicts: dict[str, list[list[bool | None]]]
    """mode -> per row, per instruction: True/False, or None when the id is not checkable."""
    unchecked: Counter = field(default_factory=Counter)
    meta: dict = field(default_factory=dict)

    def metrics(self) -> dict:
        """Accuracies via the verifier's own summary (``ifrl.constraints.report.summarize``)."""
        from ifrl.constraints.report import summarize

        out: dict = {"name": self.name, "prompts": len(self.rows), **self.meta}
        per_mode = {}
        for mode in MODES:
            v = self.verdicts[mode]
            # prompt level: prompts whose every id was checked; instruction level: every checked pair
            full = [(row_v, r["instruction_id_list"]) for row_v, r in zip(v, self.rows)
                    if row_v and all(x is not None for x in row_v)]
            pairs = [([x], [iid]) for row_v, r in zip(v, self.rows)
                     for x, iid in zip(row_v, r["instruction_id_list"]) if x is not None]
            prompt_s = summarize([f[0] for f in full], [f[1] for f in full]) if full else None
            inst_s = summarize([p[0] for p in pairs], [p[1] for p in pairs]) if pairs else None
            out[f"prompt_{mode}"] = prompt_s.prompt_level if prompt_s else None
            out[f"instruction_{mode}"] = inst_s.instruction_level if inst_s else None
            out[f"prompts_scored_{mode}"] = prompt_s.n_prompts if prompt_s else 0
            out[f"instructions_scored_{mode}"] = inst_s.n_instructions if inst_s else 0
            per_mode[mode] = inst_s.per_id if inst_s else {}
        out["per_id"] = {iid: {"n": d["n"], "strict": d["rate"], "loose": per_mode["loose"][iid]["rate"]}
                         for iid, d in per_mode["strict"].items()}
        out["unchecked"] = dict(self.unchecked.most_common())
        out["length"] = length_stats(self.responses)
        return out

    def write(self, out_dir: str | Path) -> dict:
        """Write IFEval-format files + scores.json into ``out_dir``; returns the metrics."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        with (out / "responses.jsonl").open("w", encoding="utf-8") as f:
            for row, resp in zip(self.rows, self.responses):
                f.write(json.dumps({"key": row.get("key"), "prompt": row["prompt"], "response": resp},
                                   ensure_ascii=False) + "\n")
        for mode in MODES:
            with (out / f"eval_results_{mode}.jsonl").open("w", encoding="utf-8") as f:
                for row, resp, verdict in zip(self.rows, self.responses, self.verdicts[mode]):
                    follow = [bool(x) for x in verdict]
                    f.write(json.dumps({
                        "instruction_id_list": row["instruction_id_list"], "prompt": row["prompt"],
                        "response": resp, "follow_all_instructions": all(follow),
                        "follow_instruction_list": follow,
                    }, ensure_ascii=False) + "\n")
        metrics = self.metrics()
        (out / "scores.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
        return metrics


def score_responses(rows: list[dict], responses: list[str], *, name: str = "responses",
                    meta: dict | None = None) -> EvalResult:
    """Verify ``responses[i]`` against ``rows[i]`` in strict and loose mode."""
    from ifrl.constraints import verify_batch

    if len(rows) != len(responses):
        raise ValueError(f"{len(rows)} rows but {len(responses)} responses; fix: one response per row")
    known = _registry_ids()
    unchecked: Counter = Counter()
    # Only checkable (id, kwargs) pairs go to the verifier; positions are restored afterwards.
    sub_ids, sub_kwargs, positions = [], [], []
    for row in rows:
        keep = [j for j, iid in enumerate(row["instruction_id_list"]) if known is None or iid in known]
        for j, iid in enumerate(row["instruction_id_list"]):
            if j not in keep:
                unchecked[iid] += 1
        positions.append(keep)
        sub_ids.append([row["instruction_id_list"][j] for j in keep])
        sub_kwargs.append([row["kwargs"][j] for j in keep])
    verdicts: dict[str, list[list[bool | None]]] = {}
    for mode in MODES:
        got = verify_batch(list(responses), sub_ids, sub_kwargs, mode=mode)
        full: list[list[bool | None]] = []
        for row, keep, v in zip(rows, positions, got):
            row_v: list[bool | None] = [None] * len(row["instruction_id_list"])
            for j, ok in zip(keep, v):
                row_v[j] = bool(ok)
            full.append(row_v)
        verdicts[mode] = full
    return EvalResult(name=name, rows=rows, responses=list(responses), verdicts=verdicts, unchecked=unchecked,
                      meta=dict(meta or {}))


def load_result(path: str | Path) -> dict:
    """Metrics of an earlier evaluation: its directory (``scores.json`` inside) or the JSON file."""
    p = Path(path)
    if p.is_dir():
        p = p / "scores.json"
    if not p.exists():
        raise ValueError(f"{p}: no such file; fix: pass the --out directory of an earlier `ifrl eval`")
    return json.loads(p.read_text(encoding="utf-8"))
