"""Batch verification: every (response, constraint) pair of a batch, grouped by id.

``verify_batch`` validates the whole batch first (unknown id, soft id, bad kwargs ->
ValueError naming the row), then runs each id's batch fast path once over all the
texts that need it; ids that share a fast path (``registry.fast_shared``, e.g. the ids
decided by language detection) run in one call. In loose mode each response expands to
IFEval's eight variants (as is, without its first line, last line or both, each also
with ``*`` removed) and a constraint passes if any non-blank variant passes.
"""

from __future__ import annotations

from ifrl.constraints.registry import get_spec, registry, validate_kwargs, validator


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


def _plan(instruction_id_lists, kwargs_lists, n_rows: int, where):
    """``prepare_batch`` grouped by id: ``{id: (spec, [(row, pos, prepared kwargs)])}``."""
    _check_lengths(instruction_id_lists, kwargs_lists, n_rows)
    reg = registry()
    groups: dict = {}
    checks: dict = {}
    r = 0
    for ids, kws in zip(instruction_id_lists, kwargs_lists):
        if type(ids) is not list or type(kws) is not list or len(ids) != len(kws):
            ids, kws = _row_lists(ids, kws, where, r)
        j = 0
        for iid in ids:
            kw = kws[j]
            check = checks.get(iid) if type(iid) is str else None
            if check is None:
                spec = _lookup(reg, iid, where, r, j)
                check = checks[iid] = validator(spec)
                groups[iid] = (spec, [])
            try:
                prepared = check(kw)
            except ValueError:  # re-run to name the row in the message
                validate_kwargs(iid, kw, where=f"{_loc(where, r)}, kwargs[{j}]")
                raise
            groups[iid][1].append((r, j, prepared))
            j += 1
        r += 1
    return groups


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
    n = len(responses)
    for i, r in enumerate(responses):
        if type(r) is not str and not isinstance(r, str):
            raise ValueError(f"{where + ':' if where else ''}row {i}: response must be a string, got {type(r).__name__}")
    groups = _plan(instruction_id_lists, kwargs_lists, n, where)
    out = [[False] * len(ids) for ids in instruction_id_lists]
    if mode == "strict":
        units = _strict_units(responses, groups)
    else:
        units = _loose_units(responses, groups)
    # ids with a shared fast path run in one call; the rest one call per id
    shared: dict = {}
    for spec, iids, texts, kws, owners in units:
        if spec.shared is not None:
            s = shared.get(spec.shared)
            if s is None:
                shared[spec.shared] = ([], [], [], [])
                s = shared[spec.shared]
            s[0].extend(iids)
            s[1].extend(texts)
            s[2].extend(kws)
            s[3].extend(owners)
            continue
        if spec.batch is not None:
            verdicts = spec.batch(texts, kws)
        else:
            check = spec.check
            verdicts = [check(t, k) for t, k in zip(texts, kws)]
        _mark(out, owners, verdicts)
    for fn, (iids, texts, kws, owners) in shared.items():
        _mark(out, owners, fn(iids, texts, kws))
    return out


def _mark(out, owners, verdicts) -> None:
    for (r, j), ok in zip(owners, verdicts):
        if ok:
            out[r][j] = True


def _strict_units(responses, groups):
    """Per id: ``(spec, ids, texts, kws, owners)`` over the non-blank responses."""
    blank: dict[int, bool] = {}
    units = []
    for iid, (spec, tasks) in groups.items():
        texts, ks, owners = [], [], []
        for r, j, kw in tasks:
            b = blank.get(r)
            if b is None:
                t = responses[r]
                b = blank[r] = not t or t.isspace()  # blank text fails without being checked
            if not b:
                texts.append(responses[r])
                ks.append(kw)
                owners.append((r, j))
        if texts:
            units.append((spec, [iid] * len(texts), texts, ks, owners))
    return units


def _loose_units(responses, groups):
    variants: dict[int, list[str]] = {}
    units = []
    for iid, (spec, tasks) in groups.items():
        texts, ks, owners = [], [], []
        for r, j, kw in tasks:
            v = variants.get(r)
            if v is None:
                v = variants[r] = [t for t in loose_variants(responses[r]) if t and not t.isspace()]
            for text in v:
                texts.append(text)
                ks.append(kw)
                owners.append((r, j))
        if texts:
            units.append((spec, [iid] * len(texts), texts, ks, owners))
    return units


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
