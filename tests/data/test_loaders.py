"""Loaders: every supported format in, one row shape out; bad input names file, row, field."""

from __future__ import annotations

import json

import pytest

from ifrl.data.loaders import load_ifbench, load_ifeval, load_responses, load_rows, repo_data_dir, write_rows


def _write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


SEED_ROWS = [
    {
        "key": "a-2", "prompt": "Describe a lighthouse. Use no commas. Answer in at least 40 words.",
        "instruction_id_list": ["punctuation:no_comma", "length_constraints:number_words"],
        "kwargs": [{}, {"relation": "at least", "num_words": 40}],
        "constraints": ["Do not use any commas.", "Answer with at least 40 words."],
        "level": 2, "parent": "a",
    },
    {
        "key": "s-1", "prompt": "Write a poem about rain in the style of a weather report.",
        "instruction_id_list": ["soft"], "kwargs": [{}],
        "constraints": ["Write it in the style of a weather report."], "level": 1, "parent": "s",
    },
    {"key": "m", "prompt": "What is 6*7? Put the answer in \\boxed{}.", "instruction_id_list": ["light"],
     "kwargs": [{"answer": "42"}], "constraints": ["42"]},
]


def test_ifeval_and_ifbench_copies_load():
    ifeval = load_ifeval()
    assert len(ifeval) == 541
    assert ifeval[0]["key"] == 1000
    assert ifeval[0]["kwargs"][2] == {"relation": "at least", "num_words": 300}
    ifbench = load_ifbench()
    assert len(ifbench) == 300
    # IFBench pads kwargs with nulls and stores counts as floats; both are undone.
    for row in ifbench:
        for kw in row["kwargs"]:
            assert None not in kw.values()
            for v in kw.values():
                assert not (isinstance(v, float) and v.is_integer())
    assert ifbench[0]["kwargs"][0] == {"keyword1": "kaleidoscope", "keyword2": "nebula", "keyword3": "whisper",
                                       "keyword4": "labyrinth", "keyword5": "paradox"}


def test_seed_rows_jsonl_and_parquet_round_trip_keep_ints(tmp_path):
    src = _write_jsonl(tmp_path / "seed.jsonl", SEED_ROWS)
    rows = load_rows(src)
    assert [r["key"] for r in rows] == ["a-2", "s-1", "m"]
    assert rows[0]["kwargs"][1]["num_words"] == 40 and type(rows[0]["kwargs"][1]["num_words"]) is int
    assert rows[2]["level"] == 1 and rows[2]["kwargs"] == [{"answer": "42"}]
    for ext in ("parquet", "jsonl"):
        out = write_rows(rows, tmp_path / f"out.{ext}")
        back = load_rows(out)
        assert back == rows, ext


def test_parquet_written_by_pyarrow_structs_keeps_ints(tmp_path):
    """The seed's Parquet (pandas/pyarrow structs) pads dicts with nulls; ints must stay ints."""
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    rows = [
        {"prompt": "p1", "instruction_id_list": ["length_constraints:number_words"],
         "kwargs": [{"num_words": 300, "relation": "at least"}]},
        {"prompt": "p2", "instruction_id_list": ["detectable_format:number_bullet_lists"],
         "kwargs": [{"num_bullets": 3}]},
        {"prompt": "p3", "instruction_id_list": ["keywords:frequency"],
         "kwargs": [{"keyword": "tree", "frequency": 2.0, "relation": "less than"}]},
    ]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "s.parquet")
    back = load_rows(tmp_path / "s.parquet")
    assert back[0]["kwargs"] == [{"num_words": 300, "relation": "at least"}]
    assert back[1]["kwargs"] == [{"num_bullets": 3}]
    assert back[2]["kwargs"] == [{"keyword": "tree", "frequency": 2, "relation": "less than"}]
    assert type(back[2]["kwargs"][0]["frequency"]) is int


def test_chat_rows_and_responses(tmp_path):
    src = _write_jsonl(tmp_path / "chat.jsonl", [
        {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hi."},
                      {"role": "assistant", "content": "hi"}]},
        {"messages": [{"role": "user", "content": "Name a color."}],
         "instruction_id_list": ["change_case:english_lowercase"], "kwargs": [{}]},
    ])
    rows = load_rows(src)
    assert rows[0]["prompt"] == "Say hi." and rows[0]["response"] == "hi"
    assert rows[0]["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hi."}]
    assert rows[0]["instruction_id_list"] == [] and rows[0]["key"] == 1
    assert rows[1]["instruction_id_list"] == ["change_case:english_lowercase"] and "response" not in rows[1]
    responses = load_responses(repo_data_dir() / "ifeval" / "gpt4_responses.jsonl")
    assert len(responses) == 541


def test_seed_math_answer_in_constraints_is_normalised(tmp_path):
    src = _write_jsonl(tmp_path / "m.jsonl", [
        {"prompt": "Pick one. \\boxed{}", "instruction_id_list": ["light_choice"], "kwargs": [{}],
         "constraints": ["B"]},
    ])
    assert load_rows(src)[0]["kwargs"] == [{"answer": "B"}]


@pytest.mark.parametrize(
    "row, field, line",
    [
        ({"instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}]}, "'prompt'", 2),
        ({"prompt": "x", "instruction_id_list": "punctuation:no_comma", "kwargs": [{}]}, "'instruction_id_list'", 2),
        ({"prompt": "x", "instruction_id_list": ["a", "b"], "kwargs": [{}]}, "'kwargs'", 2),
        ({"prompt": "x", "instruction_id_list": ["a"], "kwargs": [3]}, "'kwargs[0]'", 2),
        ({"prompt": "x", "instruction_id_list": ["a"], "kwargs": [{}], "constraints": ["c", "d"]}, "'constraints'", 2),
        ({"prompt": "x", "instruction_id_list": ["soft"], "kwargs": [{}]}, "'constraints[0]'", 2),
        ({"prompt": "x", "instruction_id_list": ["light"], "kwargs": [{}], "constraints": [""]}, "'kwargs[0].answer'", 2),
        ({"prompt": "x", "instruction_id_list": ["a"], "kwargs": [{}], "level": -1}, "'level'", 2),
        ({"messages": [{"role": "user"}]}, "'messages[0]'", 2),
    ],
)
def test_bad_rows_name_file_row_field_and_fix(tmp_path, row, field, line):
    good = {"prompt": "fine", "instruction_id_list": [], "kwargs": []}
    src = _write_jsonl(tmp_path / "bad.jsonl", [good, row])
    with pytest.raises(ValueError) as e:
        load_rows(src)
    msg = str(e.value)
    assert str(src) in msg and f"line {line}" in msg and f"field {field}" in msg and "fix:" in msg


def test_bad_json_line_and_missing_file(tmp_path):
    src = tmp_path / "broken.jsonl"
    src.write_text('{"prompt": "ok"}\n{"prompt": \n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"broken\.jsonl: line 2: not valid JSON"):
        load_rows(src)
    with pytest.raises(ValueError, match="no such file"):
        load_rows(tmp_path / "nope.jsonl")
    with pytest.raises(ValueError, match="unknown extension"):
        (tmp_path / "x.csv").write_text("a", encoding="utf-8")
        load_rows(tmp_path / "x.csv")
