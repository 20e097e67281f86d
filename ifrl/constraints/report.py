"""Accuracy summaries of IFEval verdicts (shared by ``ifrl verify`` and ``ifrl eval``)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field


@dataclass
class Summary:
    """Prompt-level and instruction-level accuracy plus per-id pass rates."""

    n_prompts: int
    n_instructions: int
    prompt_level: float
    """Fraction of prompts whose constraints all pass."""
    instruction_level: float
    """Fraction of all (prompt, constraint) pairs that pass."""
    per_id: dict = field(default_factory=dict)
    """id -> {"n": count, "pass": passes, "rate": fraction}."""

    def to_dict(self) -> dict:
        return {"n_prompts": self.n_prompts, "n_instructions": self.n_instructions,
                "prompt_level": self.prompt_level, "instruction_level": self.instruction_level,
                "per_id": self.per_id}


def summarize(verdicts_or_rows, instruction_id_lists=None) -> Summary:
    """Summarise ``verdicts`` (list[list[bool]]) with their ``instruction_id_lists``, or
    rows carrying ``follow_instruction_list`` and ``instruction_id_list``."""
    if instruction_id_lists is None:
        rows = list(verdicts_or_rows)
        verdicts = [r["follow_instruction_list"] for r in rows]
        instruction_id_lists = [r["instruction_id_list"] for r in rows]
    else:
        verdicts = list(verdicts_or_rows)
    if len(verdicts) != len(instruction_id_lists):
        raise ValueError(f"{len(verdicts)} verdict lists but {len(instruction_id_lists)} id lists; pass one per prompt")
    per = defaultdict(lambda: [0, 0])
    n_inst = n_pass = n_prompt_pass = 0
    for v, ids in zip(verdicts, instruction_id_lists):
        if len(v) != len(ids):
            raise ValueError(f"a verdict list has {len(v)} entries for {len(ids)} ids")
        n_prompt_pass += all(v)
        for ok, iid in zip(v, ids):
            per[iid][0] += 1
            per[iid][1] += bool(ok)
            n_inst += 1
            n_pass += bool(ok)
    n = len(verdicts)
    return Summary(
        n_prompts=n, n_instructions=n_inst,
        prompt_level=n_prompt_pass / n if n else 0.0,
        instruction_level=n_pass / n_inst if n_inst else 0.0,
        per_id={k: {"n": a, "pass": b, "rate": b / a} for k, (a, b) in sorted(per.items())},
    )


def format_table(s: Summary, title: str = "") -> str:
    lines = []
    if title:
        lines.append(title)
    lines.append(f"prompt-level accuracy:      {s.prompt_level:.4f}  ({round(s.prompt_level * s.n_prompts)}/{s.n_prompts})")
    lines.append(
        f"instruction-level accuracy: {s.instruction_level:.4f}  "
        f"({round(s.instruction_level * s.n_instructions)}/{s.n_instructions})"
    )
    if s.per_id:
        w = max(len(k) for k in s.per_id)
        lines.append(f"{'instruction id':<{w}}  {'n':>5}  {'pass':>5}  {'rate':>6}")
        for k, d in s.per_id.items():
            lines.append(f"{k:<{w}}  {d['n']:>5}  {d['pass']:>5}  {d['rate']:>6.3f}")
    return "\n".join(lines)
