"""In-loop evaluation (logging.eval_every): eval.jsonl lines, resume consistency, config errors."""

import json

import pytest

from ifrl.config import load_config
from ifrl.train import train
from train_testlib import ROWS, deterministic, read_metrics, tiny_overrides

FIELDS = ("step", "prompts", "prompt_strict", "prompt_loose", "instruction_strict", "instruction_loose",
          "prompts_scored", "instructions_scored", "response_words_mean", "response_words_median", "eval_time_s")
SMALL = {"prompts_per_step": 2, "rollout.n": 2, "rollout.max_new_tokens": 8, "algo.mini_batches": 1}


def _eval_overrides(run_dir, **extra):
    return tiny_overrides(run_dir, **{**SMALL, "steps": 2, "data.eval_files": f"[{ROWS}]", "logging.eval_every": 1,
                                      "logging.eval_limit": 3, "logging.eval_max_new_tokens": 6, **extra})


def _read(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def _no_time(rows):
    return [{k: v for k, v in r.items() if k != "eval_time_s"} for r in rows]


def test_eval_every_k_steps_and_resume(tmp_path, config_path, capsys):
    straight = tmp_path / "straight"
    train(load_config(config_path, _eval_overrides(straight)))
    lines = _read(straight / "eval.jsonl")
    assert [r["step"] for r in lines] == [0, 1, 2]  # the baseline, then every step
    n_ids = sum(len(json.loads(x)["instruction_id_list"]) for x in ROWS.read_text().splitlines()[:3])
    for r in lines:
        assert tuple(r) == FIELDS
        assert r["prompts"] == r["prompts_scored"] == 3 and r["instructions_scored"] == n_ids
        for key in ("prompt_strict", "prompt_loose", "instruction_strict", "instruction_loose"):
            assert 0.0 <= r[key] <= 1.0
        assert r["prompt_loose"] >= r["prompt_strict"] and r["instruction_loose"] >= r["instruction_strict"]
        assert r["response_words_mean"] >= 0 and r["response_words_median"] >= 0
    out = capsys.readouterr().out
    assert out.count("| prompt strict") == 3 and "eval     0 | prompt strict" in out

    # the evaluation leaves training untouched
    plain = tmp_path / "plain"
    train(load_config(config_path, tiny_overrides(plain, **SMALL, steps=2)))
    assert deterministic(read_metrics(plain)) == deterministic(read_metrics(straight))
    assert not (plain / "eval.jsonl").read_text()

    # 1 step, then a crash-like state: the checkpoint step's line lost, a line past it written
    split = tmp_path / "split"
    train(load_config(config_path, _eval_overrides(split, steps=1)))
    first = _read(split / "eval.jsonl")
    assert [r["step"] for r in first] == [0, 1]
    (split / "eval.jsonl").write_text(json.dumps(first[0]) + "\n" + json.dumps({**first[1], "step": 2}) + "\n")
    train(load_config(config_path, _eval_overrides(split, steps=2)), resume=True)
    assert _no_time(_read(split / "eval.jsonl")) == _no_time(lines)  # step 1 redone at start, 2 redone after it
    assert deterministic(read_metrics(split)) == deterministic(read_metrics(straight))


def test_eval_config_errors(tmp_path, config_path):
    with pytest.raises(ValueError, match=r"logging.eval_every=2 needs rows to evaluate on, but data.eval_files is "
                                         r"empty.*logging.eval_every=0"):
        load_config(config_path, ["logging.eval_every=2"])
    with pytest.raises(ValueError, match=r"logging.eval_limit=-1 must be >= 0"):
        load_config(config_path, ["logging.eval_limit=-1"])
    cfg = load_config(config_path, [f"data.eval_files=[{ROWS}]", "logging.eval_every=3"])
    assert cfg.logging.eval_every == 3 and cfg.data.eval_files == [str(ROWS)]
    missing = tmp_path / "missing.jsonl"
    with pytest.raises(ValueError, match=r"missing.jsonl: no such file"):
        train(load_config(config_path, tiny_overrides(tmp_path / "run", **{"data.eval_files": f"[{missing}]",
                                                                          "logging.eval_every": 1})))


@pytest.mark.distributed
def test_eval_rows_split_across_two_ranks(tmp_path):
    from train_testlib import torchrun

    run_dir = tmp_path / "run"
    proc = torchrun(["--config", "configs/tiny-cpu.yaml", *_eval_overrides(run_dir, steps=1)])
    assert proc.returncode == 0, proc.stderr[-4000:]
    lines = _read(run_dir / "eval.jsonl")
    assert [r["step"] for r in lines] == [0, 1]
    # 3 rows on 2 ranks (2 + 1): the all-reduced counts cover each row once
    n_ids = sum(len(json.loads(x)["instruction_id_list"]) for x in ROWS.read_text().splitlines()[:3])
    assert all(r["prompts"] == r["prompts_scored"] == 3 and r["instructions_scored"] == n_ids for r in lines)
    assert proc.stdout.count("| prompt strict") == 2  # only rank 0 prints


def test_eval_after_the_last_step_too(tmp_path, config_path):
    run = tmp_path / "every2"
    train(load_config(config_path, _eval_overrides(run, steps=3, **{"logging.eval_every": 2})))
    assert [r["step"] for r in _read(run / "eval.jsonl")] == [0, 2, 3]
