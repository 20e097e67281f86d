"""The engine's bookkeeping in C (``ifrl/constraints/_plan.c``) against its Python
definitions (``engine._group_py``, ``registry._make_validator_py``, ``engine._rows_py``):
the same objects on regular batches, the Python path's turn on every irregular one, the
same kwargs or the same error for every id, and the same verdicts and error messages
from ``verify_batch`` either way."""

import random
import sys

import pytest

from ifrl.constraints import engine, native, verify_batch
from ifrl.constraints.registry import registry, sample_kwargs

RG = sys.modules["ifrl.constraints.registry"]  # the package's name `registry` is the function


class _Id(str):
    """A str subclass: a valid id value the C loop leaves to Python."""


def _strict_texts(responses):
    return [None if not t or t.isspace() else t for t in responses]


def _same_groups(native, python, same_kwargs_objects=True):
    """Equal starts and blank flag; the same ids in the same order; each group with the
    same spec object, the same kwargs objects (equal ones where the Python path makes
    them, e.g. for None kwargs), the same text objects, and equal flat indices."""
    (g1, s1, b1), (g2, s2, b2) = native, python
    assert s1 == s2
    assert b1 is b2
    assert list(g1) == list(g2)
    for iid in g2:
        spec1, kws1, texts1, idx1 = g1[iid]
        spec2, kws2, texts2, idx2 = g2[iid]
        assert spec1 is spec2
        assert len(kws1) == len(kws2)
        assert all(a is b for a, b in zip(kws1, kws2)) if same_kwargs_objects else kws1 == kws2
        assert len(texts1) == len(texts2) and all(a is b for a, b in zip(texts1, texts2))
        assert idx1 == idx2


def test_native_plan_is_built():
    # setup.py builds it wherever the install finds a C compiler and Python's headers
    # (the README's setup does); without it the engine is correct but slower
    assert native.ENABLED and native.plan is not None, (
        "ifrl.constraints._plan is not built: reinstall with a C compiler and Python's headers (`make setup`)")


def _ifeval_batch(rows):
    return ([r["response"] for r in rows], [r["instruction_id_list"] for r in rows], [r["kwargs"] for r in rows])


def test_group_equals_python_on_ifeval(ifeval_rows):
    resp, ids, kws = _ifeval_batch(ifeval_rows)
    strict = _strict_texts(resp)
    loose = [[t, t.replace("*", "")] for t in resp]  # loose rows carry lists of variants
    for texts in (strict, loose):
        got = native.plan.group(ids, kws, texts, registry())
        _same_groups(got, engine._group_py(ids, kws, texts, None))


REGULAR = {
    "empty batch": ([], [], []),
    "rows without ids": (["a", "b"], [[], []], [[], []]),
    "blank rows": (["x", "", "  \n"], [["punctuation:no_comma"]] * 3, [[{}]] * 3),
    "an id twice in a row": (["a, b"], [["punctuation:no_comma", "punctuation:no_comma"]], [[{}, {}]]),
    "ids in changing order": (["a", "b", "c"],
                              [["keywords:existence", "punctuation:no_comma"], ["punctuation:no_comma"],
                               ["startend:quotation", "keywords:existence"]],
                              [[{"keywords": ["a"]}, {}], [{}], [{}, {"keywords": ["b"]}]]),
    "kwargs left unchecked (validated later)": (["a"], [["punctuation:no_comma"]], [[{"bogus": 1}]]),
    "300 rows, past the small-int cache": (["t"] * 300, [["punctuation:no_comma"]] * 300, [[{}]] * 300),
}


@pytest.mark.parametrize("name", list(REGULAR))
def test_group_equals_python_on_regular_batches(name):
    resp, ids, kws = REGULAR[name]
    texts = _strict_texts(resp)
    got = native.plan.group(ids, kws, texts, registry())
    assert got is not None
    _same_groups(got, engine._group_py(ids, kws, texts, None))


IRREGULAR = {
    "a tuple of ids": (["a"], [("punctuation:no_comma",)], [[{}]]),
    "a tuple of kwargs": (["a"], [["punctuation:no_comma"]], [({},)]),
    "None kwargs": (["a"], [["punctuation:no_comma"]], [None]),
    "fewer kwargs than ids": (["a"], [["punctuation:no_comma", "startend:quotation"]], [[{}]]),
    "an id that is not a str": (["a"], [[7]], [[{}]]),
    "a str subclass id": (["a"], [[_Id("punctuation:no_comma")]], [[{}]]),
    "an unknown id": (["a"], [["punctuation:no_comas"]], [[{}]]),
    "an unknown id in a later row": (["a", "b"], [["punctuation:no_comma"], ["nope"]], [[{}], [{}]]),
    "fewer id lists than texts": (["a", "b"], [["punctuation:no_comma"]], [[{}], [{}]]),
}


@pytest.mark.parametrize("name", list(IRREGULAR))
def test_group_leaves_irregular_batches_to_python(name):
    resp, ids, kws = IRREGULAR[name]
    assert native.plan.group(ids, kws, _strict_texts(resp), registry()) is None


@pytest.mark.parametrize("name", ["a tuple of ids", "a tuple of kwargs", "None kwargs", "a str subclass id"])
def test_irregular_but_valid_batches_give_the_python_groups(name):
    resp, ids, kws = IRREGULAR[name]
    texts = _strict_texts(resp)
    _same_groups(engine._group(ids, kws, texts, None), engine._group_py(ids, kws, texts, None),
                 same_kwargs_objects=name != "None kwargs")


def test_group_rejects_arguments_of_the_wrong_type():
    with pytest.raises(TypeError):
        native.plan.group((), [], [], registry())
    with pytest.raises(TypeError):
        native.plan.group([], [], [], list(registry()))


@pytest.mark.parametrize("seed", range(5))
def test_rows_equals_python(seed):
    rng = random.Random(seed)
    lens = [rng.choice([0, 0, 1, 2, 5]) for _ in range(rng.randint(0, 40))]
    starts = [0]
    for n in lens:
        starts.append(starts[-1] + n)
    flat = [rng.random() < 0.5 for _ in range(starts[-1])]
    got = native.plan.rows(flat, starts)
    assert got == engine._rows_py(flat, starts)
    assert all(type(r) is list for r in got)
    assert native.plan.rows([], []) == [] == engine._rows_py([], [])


def _outcome(fn):
    try:
        return ("ok", fn())
    except ValueError as e:
        return ("ValueError", str(e))


BAD = {
    "unknown id": (["a"], [["punctuation:no_comas"]], [[{}]]),
    "bad kwargs in row 1": (["a", "b"], [["punctuation:no_comma"], ["length_constraints:number_words"]],
                            [[{}], [{"relation": "about", "num_words": 3}]]),
    "id list is a str": (["a"], ["punctuation:no_comma"], [[{}]]),
    "missing kwargs": (["a"], [["keywords:existence"]], [[{}]]),
    "tuple rows and None kwargs": (["a, b", "c"], [("punctuation:no_comma",), ["startend:quotation"]], [None, None]),
}


@pytest.mark.parametrize("mode", ["strict", "loose"])
def test_verify_batch_is_the_same_without_the_c_loop(ifeval_rows, mode, monkeypatch):
    resp, ids, kws = _ifeval_batch(ifeval_rows[:120])
    cases = [(resp, ids, kws)] + list(BAD.values())
    with_c = [_outcome(lambda c=c: verify_batch(*c, mode=mode)) for c in cases]
    monkeypatch.setattr(native, "ENABLED", False)
    python = [_outcome(lambda c=c: verify_batch(*c, mode=mode)) for c in cases]
    assert with_c == python
    assert with_c[0][0] == "ok" and sum(map(sum, with_c[0][1])) > 0
    assert [o[0] for o in with_c[1:]] == ["ValueError", "ValueError", "ValueError", "ValueError", "ok"]


def _kwargs_table(spec, rng):
    """Valid kwargs for ``spec`` (sampled, and as IFEval files write them) and, per kwarg,
    the values each kind's test must send to the slow path or reject."""
    try:
        valid = sample_kwargs(spec.id, rng)
    except ValueError:  # ids whose kwargs have no sampler
        valid = {}
    table = [None, {}, valid, dict(valid), {**valid, "extra": 1}, {**valid, "extra": None}, [valid], "kw"]
    for k in spec.kwargs:
        v = valid.get(k.name)
        table.append({n: x for n, x in valid.items() if n != k.name})  # missing
        table.append({**valid, k.name: None})
        if k.kind == "int":
            bad = [True, 2.0, 2.5, "3", -(10 ** 30), 10 ** 30, (k.lo or 0) - 1, k.lo]
        elif k.kind == "str":
            bad = ["", " \t\u3000", " x ", "x", 5, ["x"], _Id("x")]
        elif k.kind == "choice":
            bad = [*k.choices, str(k.choices[0]).upper(), "", 1, _Id(str(k.choices[0]))]
        else:  # str_list
            bad = [[], ["a", ""], ["a", 1], ("a", "b"), "ab", ["a", _Id("b")], ["  "], ["a", "b"]]
        table += [{**valid, k.name: b} for b in bad]
        if v is not None:
            table.append({**valid, k.name: v})
    return table


def _validated(check, kw):
    try:
        return ("ok", check([kw]))
    except ValueError as e:
        return ("ValueError", str(e))


@pytest.mark.parametrize("iid", sorted(registry()))
def test_kwargs_check_equals_python_for_every_id(iid):
    spec = registry()[iid]
    c_check, py_check = RG._make_validator(spec), RG._make_validator_py(spec)
    table = _kwargs_table(spec, random.Random(iid))
    outcomes = [_validated(c_check, kw) for kw in table]
    assert outcomes == [_validated(py_check, kw) for kw in table]
    assert any(o[0] == "ok" for o in outcomes) and any(o[0] == "ValueError" for o in outcomes)
    # a batch of them, valid ones only, in one call: the same list, the same objects where
    # the kwargs pass as they are
    ok = [kw for kw, o in zip(table, outcomes) if o[0] == "ok"]
    got, want = c_check(ok), py_check(ok)
    assert got == want
    assert [a is kw for a, kw in zip(got, ok)] == [b is kw for b, kw in zip(want, ok)]


def test_kwargs_check_rejects_malformed_fields():
    with pytest.raises(TypeError, match="fields"):
        native.plan.check_kwargs([{}], (("n", "int", None, ()),), print, None, None)
