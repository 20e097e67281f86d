"""Batch verification: every (response, constraint) pair of a batch, grouped by id.

``verify_batch`` validates the whole batch first (unknown id, soft id, bad kwargs ->
ValueError naming the row), then runs each id's batch fast path once over all the
texts that need it. In loose mode each response expands to IFEval's eight variants
(as is, without its first line, last line or both, each also with ``*`` removed) and
a constraint passes if any non-blank variant passes.
"""

from __future__ import annotations

from collections import defaultdict

from ifrl.constraints.registry import get_spec, registry, validate_kwargs


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


def prepare_batch(instruction_id_lists, kwargs_lists, n_rows: int, where: str | None = None):
    """Validate ids and kwargs; return ``[(row, pos, spec, prepared_kwargs)]``."""
    if len(instruction_id_lists) != n_rows or len(kwargs_lists) != n_rows:
        raise ValueError(
            f"verify_batch got {n_rows} responses, {len(instruction_id_lists)} instruction_id_lists and "
            f"{len(kwargs_lists)} kwargs_lists; pass one of each per response"
        )
    reg = registry()
    tasks = []
    for r, (ids, kws) in enumerate(zip(instruction_id_lists, kwargs_lists)):
        if isinstance(ids, str) or not isinstance(ids, (list, tuple)):
            raise ValueError(f"{_loc(where, r)}: instruction_id_list must be a list of ids, got {type(ids).__name__}")
        if kws is None:
            kws = [{}] * len(ids)
        if len(kws) != len(ids):
            raise ValueError(
                f"{_loc(where, r)}: instruction_id_list has {len(ids)} ids but kwargs has {len(kws)} entries; "
                "give one kwargs object per id"
            )
        for j, (iid, kw) in enumerate(zip(ids, kws)):
            spec = reg.get(iid) if isinstance(iid, str) else None
            if spec is None:  # raises with the row, position and close ids
                get_spec(str(iid), where=f"{_loc(where, r)}, instruction_id_list[{j}]")
            try:
                prepared = validate_kwargs(iid, kw)
            except ValueError:  # re-run to name the row in the message
                validate_kwargs(iid, kw, where=f"{_loc(where, r)}, kwargs[{j}]")
                raise
            tasks.append((r, j, spec, prepared))
    return tasks


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
        if not isinstance(r, str):
            raise ValueError(f"{where + ':' if where else ''}row {i}: response must be a string, got {type(r).__name__}")
    tasks = prepare_batch(instruction_id_lists, kwargs_lists, n, where)
    out = [[False] * len(ids) for ids in instruction_id_lists]
    variants: dict[int, list[str]] = {}

    def texts_of(r: int) -> list[str]:
        if mode == "strict":
            return [responses[r]]
        v = variants.get(r)
        if v is None:
            v = variants[r] = loose_variants(responses[r])
        return v

    by_id: dict[str, list] = defaultdict(list)
    for t in tasks:
        by_id[t[2].id].append(t)
    strict = mode == "strict"
    for group in by_id.values():
        spec = group[0][2]
        texts: list[str] = []
        kws: list[dict] = []
        owner: list[tuple[int, int]] = []
        for r, j, _, kw in group:
            for text in ((responses[r],) if strict else texts_of(r)):
                if text and not text.isspace():  # blank text fails without being checked
                    texts.append(text)
                    kws.append(kw)
                    owner.append((r, j))
        if not texts:
            continue
        check = spec.check
        verdicts = spec.batch(texts, kws) if spec.batch is not None else [check(t, k) for t, k in zip(texts, kws)]
        for (r, j), ok in zip(owner, verdicts):
            if ok:
                out[r][j] = True
    return out


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
