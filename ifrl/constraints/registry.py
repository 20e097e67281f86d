"""The constraint registry: one ``ConstraintSpec`` per instruction id.

A family module (``ifrl/constraints/families/<family>.py``) declares each id with the
``constraint`` decorator on its reference check::

    @constraint("punctuation:no_comma", describe=lambda kw: "Do not use any commas.")
    def no_comma(text: str, kw: dict) -> bool:
        return "," not in text

and may attach a batch fast path with ``@fast("punctuation:no_comma")``. Adding a
constraint type is therefore a one-file change: a new module in ``families/`` is
picked up automatically.

Ids that no rule can check ("soft" ids) are routed to the reward model instead; see
``is_soft``/``route``.
"""

from __future__ import annotations

import difflib
import random
from dataclasses import dataclass, field
from typing import Any, Callable

from ifrl.constraints import native

RELATIONS = ("less than", "at least")

# Ids scored by the reward model, not by a rule: exact ids and id prefixes.
SOFT_IDS = frozenset({"soft", "style:open_ended"})
SOFT_PREFIXES = ("soft_content:", "situation:")


@dataclass(frozen=True)
class KwargSpec:
    """One keyword argument of a constraint."""

    name: str
    kind: str
    """``int``, ``str``, ``str_list``, or ``choice`` (one of ``choices``)."""
    required: bool = True
    choices: tuple = ()
    lo: int | None = None
    """Smallest valid value for ``int`` kwargs; also the low end of the sampling range."""
    sample_lo: int | None = None
    sample_hi: int | None = None
    """Inclusive sampling range used by dataset builders for ``int`` kwargs."""
    doc: str = ""


@dataclass
class ConstraintSpec:
    """Everything the engine and the dataset builder need to know about one id."""

    id: str
    check: Callable[[str, dict], bool]
    """Reference check on a non-empty response and *prepared* kwargs (see ``prepare``)."""
    describe: Callable[[dict], str]
    """Natural-language phrasing of the constraint for given kwargs."""
    kwargs: tuple[KwargSpec, ...] = ()
    prepare: Callable[[dict], dict] | None = None
    """Normalises validated kwargs the way IFEval does (strip, lower-case, ...)."""
    conflicts: frozenset = frozenset()
    """Ids that must not appear with this one in a prompt ("*" = every IFEval id)."""
    conflicts_except: frozenset = frozenset()
    batch: Callable[[list[str], list[dict]], list[bool]] | None = None
    """Optional fast path over many (text, prepared kwargs) pairs; must equal ``check``."""
    shared: Callable[[list[str], list[str], list[dict]], list[bool]] | None = None
    """Optional fast path that serves several ids in one pass (``fast_shared``): it takes
    ``(ids, texts, kws)`` with one id per text; the engine merges the ids that share it."""
    sample: Callable[[random.Random], dict] | None = None
    """Optional custom kwargs sampler (else sampled from ``kwargs``)."""
    family: str = ""
    ifeval: bool = True
    doc: str = ""


_REGISTRY: dict[str, ConstraintSpec] = {}
_LOADED = False


def constraint(
    id: str,
    *,
    describe: Callable[[dict], str],
    kwargs: tuple[KwargSpec, ...] = (),
    prepare: Callable[[dict], dict] | None = None,
    conflicts: set | frozenset = frozenset(),
    conflicts_except: set | frozenset = frozenset(),
    sample: Callable[[random.Random], dict] | None = None,
    ifeval: bool = True,
):
    """Register the decorated ``check(text, kw) -> bool`` as the reference for ``id``."""

    def deco(fn):
        if id in _REGISTRY:
            raise ValueError(f"constraint id {id!r} registered twice; ids must be unique")
        _REGISTRY[id] = ConstraintSpec(
            id=id, check=fn, describe=describe, kwargs=tuple(kwargs), prepare=prepare,
            conflicts=frozenset(conflicts), conflicts_except=frozenset(conflicts_except),
            sample=sample, family=id.split(":")[0], ifeval=ifeval, doc=(fn.__doc__ or "").strip(),
        )
        return fn

    return deco


def fast(id: str):
    """Attach a batch fast path ``fn(texts, kws) -> list[bool]`` to a registered id."""

    def deco(fn):
        _REGISTRY[id].batch = fn
        return fn

    return deco


def fast_shared(*ids: str):
    """Attach one fast path ``fn(ids, texts, kws) -> list[bool]`` to several registered ids
    (e.g. the ids that all need language detection, so it runs once per batch). Each id
    also gets it as its own ``batch``."""

    def deco(fn):
        for i in ids:
            spec = _REGISTRY[i]
            spec.shared = fn
            spec.batch = (lambda i: lambda texts, kws: fn([i] * len(texts), texts, kws))(i)
        return fn

    return deco


def _load() -> None:
    global _LOADED
    if _LOADED:
        return
    import importlib
    import pkgutil

    from ifrl.constraints import families

    for mod in sorted(m.name for m in pkgutil.iter_modules(families.__path__)):
        importlib.import_module(f"ifrl.constraints.families.{mod}")
    _LOADED = True


def registry() -> dict[str, ConstraintSpec]:
    _load()
    return _REGISTRY


def known_ids() -> list[str]:
    """All rule-checkable ids (IFEval's 25 plus ``light``/``light_choice``), sorted."""
    return sorted(registry())


def ifeval_ids() -> list[str]:
    return sorted(k for k, s in registry().items() if s.ifeval)


def is_soft(instruction_id: str) -> bool:
    """True for ids scored by the reward model: ``soft``, ``soft_content:*``,
    ``situation:*``, ``style:open_ended``."""
    return instruction_id in SOFT_IDS or instruction_id.startswith(SOFT_PREFIXES)


def route(instruction_id: str) -> str:
    """``"soft"`` (reward model) or ``"rule"`` (this package); unknown ids raise."""
    if is_soft(instruction_id):
        return "soft"
    get_spec(instruction_id)
    return "rule"


def _where(where: str | None) -> str:
    return f"{where}: " if where else ""


def get_spec(instruction_id: str, where: str | None = None) -> ConstraintSpec:
    reg = registry()
    spec = reg.get(instruction_id)
    if spec is None:
        if is_soft(instruction_id):
            raise ValueError(
                f"{_where(where)}instruction id {instruction_id!r} is a soft constraint; it is scored "
                "by the reward model, not by a rule. Route it with ifrl.constraints.route() first."
            )
        close = difflib.get_close_matches(str(instruction_id), list(reg), n=5, cutoff=0.5)
        hint = f" Did you mean one of: {', '.join(close)}?" if close else ""
        raise ValueError(
            f"{_where(where)}unknown instruction id {instruction_id!r}.{hint} "
            f"Known ids: ifrl.constraints.known_ids() ({len(reg)} ids)."
        )
    return spec


def conflicts(instruction_id: str) -> set[str]:
    """Ids that must not be combined with ``instruction_id`` in one prompt (symmetric,
    and every id conflicts with itself), following IFEval's conflict table."""
    reg = registry()
    ifeval = {k for k, s in reg.items() if s.ifeval}

    def direct(i: str) -> set[str]:
        s = reg[i]
        out = set(s.conflicts)
        if "*" in out:
            out = (out - {"*"}) | (ifeval - set(s.conflicts_except))
        return out | {i}

    get_spec(instruction_id)
    out = direct(instruction_id)
    for other in reg:
        if instruction_id in direct(other):
            out.add(other)
    return out


def _type_name(v: Any) -> str:
    return type(v).__name__


def validate_kwargs(instruction_id: str, kwargs: dict | None, where: str | None = None) -> dict:
    """Check ``kwargs`` against the id's schema; return them prepared for ``check``.

    ``None`` values are dropped first (IFEval files carry every kwarg name with
    ``null`` for unused ones). Raises ValueError naming ``where`` (e.g. ``file:row``),
    the field, the value and the fix.
    """
    spec = _REGISTRY.get(instruction_id) if _LOADED else None
    if spec is None:
        spec = get_spec(instruction_id, where)
    if kwargs is None:
        kwargs = {}
    if not isinstance(kwargs, dict):
        raise ValueError(f"{_where(where)}kwargs for {instruction_id!r} must be an object/dict, "
                         f"got {_type_name(kwargs)}")
    out: dict = {}
    n_given = 0
    for k in spec.kwargs:
        v = kwargs.get(k.name)
        if v is None:
            if k.required:
                raise ValueError(
                    f"{_where(where)}{instruction_id!r} needs kwarg {k.name!r} "
                    f"({k.kind}{': ' + k.doc if k.doc else ''}); add it to the row's kwargs."
                )
            continue
        n_given += 1
        kind = k.kind
        if kind == "int":
            if isinstance(v, float) and v.is_integer():
                v = int(v)
            if isinstance(v, bool) or not isinstance(v, int):
                raise ValueError(f"{_field(where, k.name, v, instruction_id)}: must be an integer, got {_type_name(v)}")
            if k.lo is not None and v < k.lo:
                raise ValueError(f"{_field(where, k.name, v, instruction_id)}: must be >= {k.lo}")
        elif kind == "str":
            if not isinstance(v, str) or not v.strip():
                raise ValueError(f"{_field(where, k.name, v, instruction_id)}: must be a non-empty string")
        elif kind == "str_list":
            if isinstance(v, str) or not isinstance(v, (list, tuple)) or not v:
                raise ValueError(f"{_field(where, k.name, v, instruction_id)}: must be a non-empty list of strings")
            if not all(isinstance(x, str) and x for x in v):
                raise ValueError(f"{_field(where, k.name, v, instruction_id)}: every item must be a non-empty string")
            v = list(v)
        elif kind == "choice":
            if v not in k.choices:
                close = difflib.get_close_matches(str(v), [str(c) for c in k.choices], n=3, cutoff=0.4)
                hint = f" (closest: {close})" if close else ""
                raise ValueError(f"{_field(where, k.name, v, instruction_id)}: must be one of {list(k.choices)}{hint}")
        out[k.name] = v
    if len(kwargs) != n_given and n_given != sum(1 for v in kwargs.values() if v is not None):
        names = {k.name for k in spec.kwargs}
        extra = sorted(k for k, v in kwargs.items() if v is not None and k not in names)
        raise ValueError(
            f"{_where(where)}{instruction_id!r} does not take kwarg(s) {extra}; it takes {sorted(names) or 'none'}. "
            "Remove the field or fix the instruction id."
        )
    return spec.prepare(out) if spec.prepare else out


def validator(spec: ConstraintSpec) -> Callable[[Any], dict]:
    """A function ``kw -> prepared kwargs`` equal to ``validate_kwargs(spec.id, kw)``."""
    return lambda kw: many_validator(spec)([kw])[0]


def many_validator(spec: ConstraintSpec) -> Callable[[list], list]:
    """A function ``kws -> [prepared kwargs]`` equal to ``[validate_kwargs(spec.id, kw) for
    kw in kws]``: one loop of straight-line tests takes the common exact-type case and
    hands anything else (None values, floats, tuples, extra fields, invalid input) to
    ``validate_kwargs``, which converts or raises. An exactly valid dict of an id without
    a ``prepare`` step is returned as it is (the checks only read their kwargs)."""
    key = (spec.id, native.ENABLED)
    v = _VALIDATORS.get(key)
    if v is None:
        v = _VALIDATORS[key] = _make_validator(spec) if native.ENABLED else _make_validator_py(spec)
    return v


_VALIDATORS: dict[tuple[str, bool], Callable[[list], list]] = {}
_KIND_CODES = {"int": 0, "str": 1, "choice": 2, "str_list": 3}  # as _plan.c numbers them


def _make_validator(spec: ConstraintSpec) -> Callable[[list], list]:
    """The batch validator of one id as the C loop ``_plan.check_kwargs``: the same tests,
    in the same order, as ``_make_validator_py``'s generated code (ids with optional
    kwargs take its plain loop)."""
    iid, prepare = spec.id, spec.prepare
    if not all(k.required for k in spec.kwargs):
        return _make_validator_py(spec)
    fields = tuple((k.name, _KIND_CODES[k.kind], None if k.lo is None or k.kind != "int" else int(k.lo),
                    tuple(k.choices)) for k in spec.kwargs)
    empty = None if spec.kwargs else (prepare({}) if prepare else {})
    check = native.plan.check_kwargs

    def slow(kw):
        return validate_kwargs(iid, kw)

    return lambda kws: check(kws if type(kws) is list else list(kws), fields, slow, prepare, empty)


def _make_validator_py(spec: ConstraintSpec) -> Callable[[list], list]:
    """Generate the batch validator of one id as a loop of straight-line code (one test per
    kwarg)."""
    iid, prepare = spec.id, spec.prepare
    env: dict[str, Any] = {"slow": lambda kw: validate_kwargs(iid, kw), "prepare": prepare}
    if not all(k.required for k in spec.kwargs):
        return lambda kws: [validate_kwargs(iid, kw) for kw in kws]
    src = ["def check_many(kws):", "    out = []", "    add = out.append", "    for kw in kws:"]
    if not spec.kwargs:
        env["empty"] = prepare({}) if prepare else {}
        src += ["        if kw is None or (type(kw) is dict and not kw):",
                "            add(empty)",
                "        else:",
                "            add(slow(kw))"]
    else:
        src += [f"        if type(kw) is not dict or len(kw) != {len(spec.kwargs)}:",
                "            add(slow(kw))", "            continue"]
        items = []
        for i, k in enumerate(spec.kwargs):
            v = f"v{i}"
            src.append(f"        {v} = kw.get({k.name!r})")
            if k.kind == "int":
                cond = f"type({v}) is int" + (f" and {v} >= {int(k.lo)}" if k.lo is not None else "")
            elif k.kind == "str":
                cond = f"type({v}) is str and {v} != '' and not {v}.isspace()"
            elif k.kind == "choice":
                env[f"choices{i}"] = k.choices
                cond = f"type({v}) is str and {v} in choices{i}"
            else:  # str_list
                cond = f"type({v}) is list and len({v}) > 0 and all(type(x) is str and x for x in {v})"
            src += [f"        if not ({cond}):", "            add(slow(kw))", "            continue"]
            items.append(f"{k.name!r}: {v}")
        made = "{" + ", ".join(items) + "}"
        src.append(f"        add(prepare({made}))" if prepare else "        add(kw)")
    src.append("    return out")
    exec("\n".join(src), env)
    return env["check_many"]


def _field(where, name, v, instruction_id) -> str:
    return f"{_where(where)}kwargs.{name}={v!r} for {instruction_id!r}"


def sample_kwargs(instruction_id: str, rng: random.Random) -> dict:
    """Draw valid kwargs for ``instruction_id`` from its sampling ranges (for dataset building)."""
    spec = get_spec(instruction_id)
    if spec.sample is not None:
        return spec.sample(rng)
    out: dict = {}
    for k in spec.kwargs:
        if not k.required:
            continue
        if k.kind == "int":
            out[k.name] = rng.randint(k.sample_lo if k.sample_lo is not None else (k.lo or 1), k.sample_hi or 10)
        elif k.kind == "choice":
            out[k.name] = rng.choice(k.choices)
        else:
            raise ValueError(f"{instruction_id!r}: kwarg {k.name!r} has no sampler; register sample= for it")
    return out


def describe(instruction_id: str, kwargs: dict | None = None) -> str:
    """Natural-language phrasing of a constraint (kwargs are validated first)."""
    spec = get_spec(instruction_id)
    raw = {k: v for k, v in (kwargs or {}).items() if v is not None}
    validate_kwargs(instruction_id, raw)
    return spec.describe(raw)
