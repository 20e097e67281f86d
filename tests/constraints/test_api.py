"""Registry API, routing, validation errors, CLI and summaries."""

import json
import random
import subprocess
import sys

import pytest

from ifrl import constraints as C
from ifrl.constraints.report import summarize


def test_known_ids_cover_ifeval_and_light():
    ids = C.known_ids()
    assert len(C.ifeval_ids()) == 25
    assert {"light", "light_choice", "quality:no_repetition"} <= set(ids) and len(ids) == 28


@pytest.mark.parametrize("iid,soft", [
    ("soft", True), ("soft_content:tone", True), ("situation:job_interview", True), ("style:open_ended", True),
    ("punctuation:no_comma", False), ("light", False), ("style:formal", False),
])
def test_is_soft(iid, soft):
    assert C.is_soft(iid) is soft


def test_route_and_soft_ids_rejected_by_verify():
    assert C.route("soft_content:x") == "soft" and C.route("light") == "rule"
    with pytest.raises(ValueError, match="soft constraint.*reward model"):
        C.verify_batch(["x"], [["soft"]], [[{}]])


def test_unknown_id_names_row_and_close_ids():
    with pytest.raises(ValueError, match=r"row 1.*'keywords:existance'.*keywords:existence"):
        C.verify_batch(["a", "b"], [["punctuation:no_comma"], ["keywords:existance"]], [[{}], [{"keywords": ["a"]}]])


def test_verify_batch_names_the_first_bad_row_in_row_order():
    # kwargs are validated per id in one call; the error must still be the first bad row
    resp = ["a", "b", "c", "d"]
    ids = [["punctuation:no_comma"], ["length_constraints:number_words"], ["keywords:existence"],
           ["keywords:existance"]]
    kws = [[{}], [{"num_words": 5, "relation": "at least"}], [{"keywords": "apple"}], [{}]]
    with pytest.raises(ValueError, match=r"row 2, kwargs\[0\].*list of strings"):
        C.verify_batch(resp, ids, kws)
    kws[2] = [{"keywords": ["apple"]}]
    with pytest.raises(ValueError, match=r"row 3.*'keywords:existance'"):
        C.verify_batch(resp, ids, kws)


@pytest.mark.parametrize("iid,kw", [
    ("length_constraints:number_words", {"num_words": 5, "relation": "at least"}),
    ("length_constraints:number_words", {"num_words": 5.0, "relation": "at least", "keywords": None}),
    ("keywords:existence", {"keywords": ("a", "b")}),
    ("keywords:existence", {"keywords": ["a", "b"]}),
    ("detectable_content:postscript", {"postscript_marker": " P.S. "}),
    ("keywords:letter_frequency", {"letter": "A", "let_frequency": 2, "let_relation": "less than"}),
    ("punctuation:no_comma", None),
    ("punctuation:no_comma", {}),
    ("punctuation:no_comma", {"num_words": None}),
])
def test_batch_validator_equals_validate_kwargs(iid, kw):
    from ifrl.constraints.registry import many_validator, registry

    assert many_validator(registry()[iid])([kw, kw]) == [C.validate_kwargs(iid, kw)] * 2


@pytest.mark.parametrize("iid,kw,msg", [
    ("length_constraints:number_words", {"relation": "at least"}, "needs kwarg 'num_words'"),
    ("length_constraints:number_words", {"num_words": "ten", "relation": "at least"}, "num_words='ten'.*integer"),
    ("length_constraints:number_words", {"num_words": 5, "relation": "more than"}, "one of"),
    ("keywords:existence", {"keywords": "apple"}, "list of strings"),
    ("punctuation:no_comma", {"oops": 1}, "does not take kwarg"),
    ("length_constraints:nth_paragraph_first_word", {"num_paragraphs": 2, "nth_paragraph": 3, "first_word": "a"},
     "nth_paragraph=3"),
    ("light_choice", {"answer": "42"}, "choice letter"),
    ("keywords:letter_frequency", {"letter": "ab", "let_frequency": 2, "let_relation": "at least"}, "one character"),
])
def test_validate_kwargs_errors(iid, kw, msg):
    with pytest.raises(ValueError, match=msg):
        C.validate_kwargs(iid, kw, where="data.jsonl:7")


def test_validate_names_where():
    with pytest.raises(ValueError, match="data.jsonl:7"):
        C.validate_kwargs("length_constraints:number_words", {}, where="data.jsonl:7")


def test_none_kwargs_dropped_like_ifeval():
    assert C.validate_kwargs("punctuation:no_comma", {"num_words": None, "keywords": None}) == {}


def test_conflicts_symmetric_and_reflexive():
    for a in C.ifeval_ids():
        ca = C.conflicts(a)
        assert a in ca
        for b in ca:
            assert a in C.conflicts(b)
    assert "punctuation:no_comma" in C.conflicts("detectable_format:constrained_response")
    assert "keywords:existence" not in C.conflicts("detectable_format:json_format")


def test_describe_and_sample_every_id():
    rng = random.Random(0)
    for iid in C.known_ids():
        if iid in ("combination:repeat_prompt", "light", "light_choice"):
            kw = {"combination:repeat_prompt": {"prompt_to_repeat": "Say hi."}, "light": {"answer": "3"},
                  "light_choice": {"answer": "B"}}[iid]
        else:
            kw = C.sample_kwargs(iid, rng)
        C.validate_kwargs(iid, kw)
        text = C.describe(iid, kw)
        assert isinstance(text, str) and len(text) > 10


def test_summarize():
    s = summarize([[True, False], [True]], [["a", "b"], ["a"]])
    assert s.prompt_level == 0.5 and s.instruction_level == pytest.approx(2 / 3)
    assert s.per_id["a"] == {"n": 2, "pass": 2, "rate": 1.0}
    s2 = summarize([{"follow_instruction_list": [True], "instruction_id_list": ["a"]}])
    assert s2.prompt_level == 1.0


def test_cli_verify_and_errors(tmp_path):
    rows = [{"prompt": "p1", "response": "no commas here", "instruction_id_list": ["punctuation:no_comma"],
             "kwargs": [{}]},
            {"prompt": "p2", "response": "a, b", "instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}]}]
    inp = tmp_path / "in.jsonl"
    inp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out.jsonl"
    p = subprocess.run([sys.executable, "-m", "ifrl", "verify", "--input", str(inp), "--output", str(out)],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert "prompt-level accuracy:      0.5000" in p.stdout and "punctuation:no_comma" in p.stdout
    got = [json.loads(x) for x in out.read_text().splitlines()]
    assert [g["follow_all_instructions"] for g in got] == [True, False]
    assert got[1]["follow_instruction_list"] == [False]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(rows[0]) + "\n{not json\n")
    p = subprocess.run([sys.executable, "-m", "ifrl", "verify", "--input", str(bad), "--output", str(out)],
                       capture_output=True, text=True)
    assert p.returncode == 2 and "bad.jsonl:2: malformed JSON" in p.stderr


def test_cli_responses_file(tmp_path):
    inp = tmp_path / "input.jsonl"
    inp.write_text(json.dumps({"key": 1, "prompt": "p", "instruction_id_list": ["startend:quotation"],
                               "kwargs": [{}]}) + "\n")
    resp = tmp_path / "resp.jsonl"
    resp.write_text(json.dumps({"prompt": "p", "response": '"quoted"'}) + "\n")
    out = tmp_path / "o.jsonl"
    p = subprocess.run([sys.executable, "-m", "ifrl", "verify", "--input", str(inp), "--responses", str(resp),
                        "--output", str(out), "--mode", "loose"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert json.loads(out.read_text())["follow_all_instructions"] is True


def test_cli_list_ids():
    p = subprocess.run([sys.executable, "-m", "ifrl", "verify", "--list"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert "punctuation:no_comma" in p.stdout and "light_choice" in p.stdout and "soft_content:*" in p.stdout
    p = subprocess.run([sys.executable, "-m", "ifrl", "verify"], capture_output=True, text=True)
    assert p.returncode == 2 and "--input and --output are required" in p.stderr
