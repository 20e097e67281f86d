"""Bad input fails fast with one clear error naming file, row, field and the fix; a failing
reward for one sample is logged and excluded, not fatal."""

import json
import logging

import pytest

import ifrl.reward.compose as compose
from ifrl.config import RewardConfig, load_config
from ifrl.reward.compose import RewardFn
from ifrl.train import main, train
from train_testlib import ROWS, read_metrics, tiny_overrides


def _cfg(tmp_path, config_path, data_file, **extra):
    return load_config(config_path, tiny_overrides(tmp_path / "run", **{"data.train_files": f"[{data_file}]", **extra}))


def _write(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


GOOD = {"key": "a", "prompt": "Write a poem.", "instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}]}


def test_missing_data_file(tmp_path, config_path):
    with pytest.raises(ValueError, match=r"nope\.jsonl: no such file; fix: check the path"):
        train(_cfg(tmp_path, config_path, tmp_path / "nope.jsonl"))


def test_malformed_json_line(tmp_path, config_path):
    f = _write(tmp_path / "bad.jsonl", [GOOD, '{"prompt": "x", "instruction_id_list": ['])
    with pytest.raises(ValueError, match=r"bad\.jsonl: line 2: not valid JSON.*fix: one complete JSON object"):
        train(_cfg(tmp_path, config_path, f))


def test_row_without_instruction_ids(tmp_path, config_path):
    f = _write(tmp_path / "noids.jsonl", [GOOD, {"key": "b", "prompt": "Hello"}])
    with pytest.raises(ValueError, match=r"noids\.jsonl: row 1 \(key 'b'\): field 'instruction_id_list' is empty.*Fix"):
        train(_cfg(tmp_path, config_path, f))


def test_unknown_instruction_id(tmp_path, config_path):
    f = _write(tmp_path / "unk.jsonl", [GOOD, {**GOOD, "key": "c", "instruction_id_list": ["punctuation:no_coma"]}])
    with pytest.raises(ValueError, match=r"unk\.jsonl: row 1 .*field 'instruction_id_list\[0\]': unknown id "
                                         r"'punctuation:no_coma'; fix"):
        train(_cfg(tmp_path, config_path, f))


def test_bad_kwargs_and_soft_ids_fail_at_start(tmp_path, config_path):
    f = _write(tmp_path / "kw.jsonl", [{**GOOD, "instruction_id_list": ["startend:end_checker"], "kwargs": [{}]}])
    with pytest.raises(ValueError, match=r"kw\.jsonl: row 0 \(key 'a'\): field 'kwargs\[0\]'.*needs kwarg 'end_phrase'"):
        train(_cfg(tmp_path, config_path, f))
    f = _write(tmp_path / "soft.jsonl", [{**GOOD, "instruction_id_list": ["soft"], "constraints": ["Be kind."]}])
    with pytest.raises(ValueError, match=r"soft\.jsonl: row 0 .*'instruction_id_list\[0\]': soft constraint id 'soft' "
                                         r"needs the soft-constraint reward model"):
        train(_cfg(tmp_path, config_path, f))


def test_config_typo_from_cli(tmp_path, config_path, capsys):
    assert main(["--config", config_path, "optim.weight_decy=0.1"]) == 2
    err = capsys.readouterr().err
    assert "unknown config key 'optim.weight_decy'" in err and "Did you mean 'weight_decay'" in err


def test_reward_failure_is_logged_and_excluded(caplog):
    rows = [GOOD, {**GOOD, "instruction_id_list": ["length_constraints:number_words"],
                   "kwargs": [{"num_words": "many", "relation": "at least"}]}, GOOD]
    fn = RewardFn(RewardConfig(scale=5.0))
    with caplog.at_level(logging.WARNING, logger="ifrl.reward"):
        scores = fn(["no commas here", "some words", "a, b"], rows)
    assert scores == [5.0, None, 0.0]
    assert fn.failures == 1
    assert "reward failed for sample 1" in caplog.text and "excluded" in caplog.text


def test_reasoning_block_extraction():
    fn = RewardFn(RewardConfig(scale=5.0, reasoning_delimiter="</think>\n\n"))
    rows = [GOOD] * 3
    assert fn(["<think>a, b</think>\n\nno commas", "<think>x</think>\n\nyes, comma", "never closed"], rows) == \
        [5.0, 0.0, 0.0]


def test_training_survives_a_failing_reward(tmp_path, config_path, monkeypatch):
    """One sample's verifier raising each step: the step is logged, that sample excluded, the run ends."""
    real = compose._verify
    calls = {"n": 0}

    def flaky(texts, ids, kwargs, mode):
        if len(texts) > 1:
            raise RuntimeError("verifier crashed")  # forces the per-sample fallback
        calls["n"] += 1
        if calls["n"] % 16 == 3:  # one sample in each step of 16
            raise RuntimeError("verifier crashed on this sample")
        return real(texts, ids, kwargs, mode)

    monkeypatch.setattr(compose, "_verify", flaky)
    cfg = _cfg(tmp_path, config_path, ROWS, steps=2, **{"checkpoint.save_final": "false"})
    train(cfg)
    rows = read_metrics(tmp_path / "run")
    assert [r["reward_failures"] for r in rows] == [1, 1]
