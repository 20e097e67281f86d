"""Batch verification: every (response, constraint) pair of a batch, grouped by id.

``verify_batch`` validates the whole batch first (unknown id, soft id, bad kwargs ->
ValueError naming the row), then runs each id's batch fast path once over all the
texts that need it; ids that share a fast path (``registry.fast_shared``, e.g. the ids
decided by language detection) run in one call. In loose mode each response expands to
IFEval's eight variants (as is, without its first line, last line or both, each also
with ``*`` removed) and a constraint passes if any non-blank variant passes; equal
variants are checked once.

The per-check bookkeeping (grouping the checks by id, validating kwargs, cutting the
verdicts into rows) runs as C loops where ``_plan.c`` is built (``native.ENABLED``), and
as the Python definitions beside them otherwise; both give the same results.
"""

from __future__ import annotations

import gc
from itertools import compress

import numpy as np

from ifrl.constraints import native
from ifrl.constraints.registry import get_spec, many_validator, registry, validate_kwargs, validator


def _loc(where: str | None, r: int) -> str:
    return f"{where}:row {r}" if where else f"row {r}"

MODES = ("strict", "loose")


def loose_variants(response: str) -> list[str]:
    lines = response.split("\n")
    no_first = "\n".join(lines[1:]).strip()
    no_last = "\n".join(lines[:-1]).strip()
    no_both = "\n".join(lines[1:-1]).strip()
    return [
        response, response.replace("*", ""), no_first, no_last, no_both,
        no_first.replace("*", ""), no_last.replace("*", ""), no_both.replace("*", ""),
    ]


def _check_lengths(instruction_id_lists, kwargs_lists, n_rows: int) -> None:
    if len(instruction_id_lists) != n_rows or len(kwargs_lists) != n_rows:
        raise ValueError(
            f"verify_batch got {n_rows} responses, {len(instruction_id_lists)} instruction_id_lists and "
            f"{len(kwargs_lists)} kwargs_lists; pass one of each per response"
        )


def _row_lists(ids, kws, where, r):
    """The row's id list and kwargs list (``None`` kwargs -> empty objects), checked."""
    if isinstance(ids, str) or not isinstance(ids, (list, tuple)):
        raise ValueError(f"{_loc(where, r)}: instruction_id_list must be a list of ids, got {type(ids).__name__}")
    if kws is None:
        kws = [{}] * len(ids)
    if len(kws) != len(ids):
        raise ValueError(
            f"{_loc(where, r)}: instruction_id_list has {len(ids)} ids but kwargs has {len(kws)} entries; "
            "give one kwargs object per id"
        )
    return ids, kws


def _lookup(reg, iid, where, r, j):
    spec = reg.get(iid) if isinstance(iid, str) else None
    if spec is None:  # raises with the row, position and close ids
        get_spec(str(iid), where=f"{_loc(where, r)}, instruction_id_list[{j}]")
    return spec


def _prepare(check, iid, kw, where, r, j):
    try:
        return check(kw)
    except ValueError:  # re-run to name the row in the message
        validate_kwargs(iid, kw, where=f"{_loc(where, r)}, kwargs[{j}]")
        raise


def prepare_batch(instruction_id_lists, kwargs_lists, n_rows: int, where: str | None = None):
    """Validate ids and kwargs; return ``[(row, pos, spec, prepared_kwargs)]``."""
    _check_lengths(instruction_id_lists, kwargs_lists, n_rows)
    reg = registry()
    tasks = []
    for r, (ids, kws) in enumerate(zip(instruction_id_lists, kwargs_lists)):
        ids, kws = _row_lists(ids, kws, where, r)
        for j, (iid, kw) in enumerate(zip(ids, kws)):
            spec = _lookup(reg, iid, where, r, j)
            tasks.append((r, j, spec, _prepare(validator(spec), iid, kw, where, r, j)))
    return tasks


def _group(instruction_id_lists, kwargs_lists, row_texts, where):
    """``({id: [spec, raw kwargs, texts, flat indices]}, row starts, blank)``, ids in order
    of first use; check ``j`` of row ``r`` has flat index ``starts[r] + j`` and is checked
    on ``row_texts[r]``; ``blank`` says whether some of those texts are None.

    The C loop takes batches of plain lists with registered str ids; it hands anything
    else (tuples, None kwargs, unknown ids, ...) to ``_group_py``, which converts or raises."""
    if native.ENABLED and type(instruction_id_lists) is list and type(kwargs_lists) is list:
        out = native.plan.group(instruction_id_lists, kwargs_lists, row_texts, registry())
        if out is not None:
            return out
    return _group_py(instruction_id_lists, kwargs_lists, row_texts, where)


def _group_py(instruction_id_lists, kwargs_lists, row_texts, where):
    """``_group`` in Python: the definition, and the path for irregular batches."""
    reg = registry()
    groups: dict = {}
    starts = []
    r = 0
    k = 0
    for ids, kws, text in zip(instruction_id_lists, kwargs_lists, row_texts):
        if type(ids) is not list or type(kws) is not list or len(ids) != len(kws):
            ids, kws = _row_lists(ids, kws, where, r)
        starts.append(k)
        for iid, kw in zip(ids, kws):
            g = groups.get(iid) if type(iid) is str else None
            if g is None:
                g = groups[iid] = [_lookup(reg, iid, where, r, k - starts[-1]), [], [], []]
            g[1].append(kw)
            g[2].append(text)
            g[3].append(k)
            k += 1
        r += 1
    starts.append(k)
    return groups, starts, None in row_texts


def _plan(instruction_id_lists, kwargs_lists, row_texts, strict: bool, where):
    """Validate every (row, id, kwargs), as ``prepare_batch``, and group the checks by id:
    ``({id: (spec, texts, prepared kwargs, flat indices)}, row starts)`` (see ``_group``).
    ``row_texts[r]`` is what row ``r`` is checked on: its response, or None when blank
    (strict); the list of its non-blank variants (loose). Blank texts fail without being
    checked.

    The ids are looked up row by row; the kwargs of each id are then validated in one
    call (``registry.many_validator``). When some kwargs are invalid, the batch is
    validated again row by row so that the error names the first bad row."""
    _check_lengths(instruction_id_lists, kwargs_lists, len(row_texts))
    try:
        groups, starts, blank = _group(instruction_id_lists, kwargs_lists, row_texts, where)
        for g in groups.values():
            g[1] = many_validator(g[0])(g[1])
    except ValueError:  # name the first bad row, in row order
        prepare_batch(instruction_id_lists, kwargs_lists, len(row_texts), where)
        raise
    planned = {}
    for iid, (spec, kws, texts, idx) in groups.items():
        if strict:
            if blank and None in texts:  # drop the checks of blank responses
                keep = [i for i, t in enumerate(texts) if t is not None]
                texts = [texts[i] for i in keep]
                kws = [kws[i] for i in keep]
                idx = [idx[i] for i in keep]
        else:  # one check per non-blank variant
            kws = [k for k, v in zip(kws, texts) for _ in v]
            idx = [x for x, v in zip(idx, texts) for _ in v]
            texts = [t for v in texts for t in v]
        planned[iid] = (spec, texts, kws, idx)
    return planned, starts


def verify_batch(
    responses: list[str],
    instruction_id_lists: list[list[str]],
    kwargs_lists: list[list[dict]],
    mode: str = "strict",
    where: str | None = None,
) -> list[list[bool]]:
    """IFEval verdicts: ``out[i][j]`` is whether response ``i`` follows its ``j``-th
    constraint. ``mode`` is ``"strict"`` or ``"loose"``. Blank responses fail everything.
    Soft ids raise ValueError: route them to the reward model (``route``)."""
    if mode not in MODES:
        raise ValueError(f"mode={mode!r}: must be 'strict' or 'loose'")
    # the cyclic garbage collector finds nothing to free in a batch's lists and tuples; it
    # only rescans them, so it is paused for the call (and restored as it was)
    gc_was_on = gc.isenabled()
    gc.disable()
    try:
        if not set(map(type, responses)) <= {str}:
            for i, t in enumerate(responses):
                if not isinstance(t, str):
                    raise ValueError(f"{where + ':' if where else ''}row {i}: response must be a string, "
                                     f"got {type(t).__name__}")
        strict = mode == "strict"
        if strict:
            row_texts = [None if not t or t.isspace() else t for t in responses]
        else:
            # a constraint passes if any variant does, so each distinct variant is checked once
            # (a response without "*" or without line breaks has many equal variants)
            row_texts = [list(dict.fromkeys(v for v in loose_variants(t) if v and not v.isspace()))
                         for t in responses]
        return _run(instruction_id_lists, kwargs_lists, row_texts, strict, where)
    finally:
        if gc_was_on:
            gc.enable()


def _run(instruction_id_lists, kwargs_lists, row_texts, strict, where):
    groups, starts = _plan(instruction_id_lists, kwargs_lists, row_texts, strict, where)
    flat = [False] * starts[-1]  # one verdict per check, rows end to end
    # ids with a shared fast path run in one call; the rest one call per id
    shared: dict = {}
    for iid, (spec, texts, kws, idx) in groups.items():
        if not texts:
            continue
        if spec.shared is not None:
            s = shared.get(spec.shared)
            if s is None:
                s = shared[spec.shared] = ([], [], [], [])
            s[0].extend([iid] * len(texts))
            s[1].extend(texts)
            s[2].extend(kws)
            s[3].extend(idx)
            continue
        if spec.batch is not None:
            verdicts = spec.batch(texts, kws)
        else:
            check = spec.check
            verdicts = [check(t, k) for t, k in zip(texts, kws)]
        _mark(flat, idx, verdicts)
    for fn, (iids, texts, kws, idx) in shared.items():
        _mark(flat, idx, fn(iids, texts, kws))
    return _rows(flat, starts)


def _rows(flat: list, starts: list) -> list[list[bool]]:
    """The flat verdicts cut into rows: row ``r`` is ``flat[starts[r]:starts[r + 1]]``."""
    if native.ENABLED:
        return native.plan.rows(flat, starts)
    return _rows_py(flat, starts)


def _rows_py(flat: list, starts: list) -> list[list[bool]]:
    return [flat[a:b] for a, b in zip(starts, starts[1:])]


def _mark(flat: list, idx: list, verdicts) -> None:
    """Set the checks at flat indices ``idx`` whose verdict is true (loose mode repeats an
    index once per variant: any true variant passes)."""
    if len(verdicts) != len(idx):
        raise RuntimeError(f"a batch check returned {len(verdicts)} verdicts for {len(idx)} texts")
    if isinstance(verdicts, np.ndarray):
        verdicts = verdicts.tolist()
    for i in compress(idx, verdicts):
        flat[i] = True


def verify_reference(responses, instruction_id_lists, kwargs_lists, mode: str = "strict") -> list[list[bool]]:
    """The same verdicts from the plain-Python reference checks only (the test oracle)."""
    if mode not in MODES:
        raise ValueError(f"mode={mode!r}: must be 'strict' or 'loose'")
    tasks = prepare_batch(instruction_id_lists, kwargs_lists, len(responses))
    out = [[False] * len(ids) for ids in instruction_id_lists]
    for r, j, spec, kw in tasks:
        texts = [responses[r]] if mode == "strict" else loose_variants(responses[r])
        out[r][j] = any(t.strip() and spec.check(t, kw) for t in texts)
    return out
