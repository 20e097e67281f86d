"""Incremental constraint curriculum: one K-constraint instruction becomes K rows.

Level L_k keeps the first k constraints (a prefix), so the policy sees every constraint
both asked for and, one level below, not asked for; the soft-constraint pseudo-labels rely
on exactly that pairing. Every row carries ``key`` (``<parent>-L<k>``), ``level`` (k) and
``parent`` (the key of the full instruction).

Two schedules: ``mixed`` (all levels shuffled together, as the method's default) and
``staged`` (all L1 rows, then L2, ... each level shuffled inside).
"""

from __future__ import annotations

import random

__all__ = ["compose_prompt", "expand_levels", "schedule", "level_key"]


def compose_prompt(task: str, constraint_texts: list[str]) -> str:
    """The instruction text: the task followed by its constraint sentences."""
    parts = [task.strip()] + [c.strip() for c in constraint_texts if c.strip()]
    return " ".join(parts)


def level_key(parent_key: str | int, level: int) -> str:
    return f"{parent_key}-L{level}"


def expand_levels(full: dict, *, task: str | None = None, levels: str = "all", include_base: bool = False) -> list[dict]:
    """Rows for levels 1..K of one full instruction (``levels="top"``: only level K).

    ``full`` holds ``key``, ``instruction_id_list``, ``kwargs``, ``constraints`` and either
    ``task`` (the bare instruction) or the ``task`` argument; prompts are recomposed from the
    task and the constraint prefix. ``include_base`` adds level 0 (the bare task, no
    constraints), which the soft pseudo-labels use as the negative for k=1.
    """
    task = task if task is not None else full.get("task")
    if not isinstance(task, str) or not task.strip():
        raise ValueError(f"row {full.get('key')!r}: field 'task': expand_levels needs the bare instruction to "
                         "rebuild prefix prompts; fix: pass task= or keep the 'task' field")
    if levels not in ("all", "top"):
        raise ValueError(f"levels={levels!r}; fix: use 'all' or 'top'")
    ids, kws, texts = full["instruction_id_list"], full["kwargs"], full["constraints"]
    if not (len(ids) == len(kws) == len(texts)):
        raise ValueError(f"row {full.get('key')!r}: instruction_id_list/kwargs/constraints lengths differ "
                         f"({len(ids)}/{len(kws)}/{len(texts)}); fix: one entry per constraint in each")
    k_max = len(ids)
    first = 0 if include_base else 1
    if levels == "top":
        first = k_max
    rows = []
    for k in range(first, k_max + 1):
        row = {
            "key": level_key(full["key"], k),
            "prompt": compose_prompt(task, texts[:k]),
            "instruction_id_list": list(ids[:k]),
            "kwargs": [dict(kw) for kw in kws[:k]],
            "constraints": list(texts[:k]),
            "level": k,
            "parent": full["key"],
            "task": task,
        }
        rows.append(row)
    return rows


def schedule(rows: list[dict], *, order: str = "mixed", seed: int = 0) -> list[dict]:
    """Order rows for training: ``mixed`` shuffles all levels, ``staged`` goes L1 -> LK."""
    rng = random.Random(seed)
    if order == "mixed":
        out = list(rows)
        rng.shuffle(out)
        return out
    if order == "staged":
        by_level: dict[int, list[dict]] = {}
        for r in rows:
            by_level.setdefault(int(r["level"]), []).append(r)
        out = []
        for level in sorted(by_level):
            group = by_level[level]
            rng.shuffle(group)
            out.extend(group)
        return out
    if order == "none":
        return list(rows)
    raise ValueError(f"order={order!r}; fix: use 'mixed', 'staged' or 'none'")
