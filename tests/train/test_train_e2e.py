"""End-to-end trainer runs on the tiny random model: 1 process, determinism, resume, export."""

import math
import subprocess
import time

import pytest
import torch

from ifrl.config import load_config
from ifrl.export import load_policy_state
from ifrl.train import train

from train_testlib import PY, REPO, child_env, deterministic, read_metrics, time_limit, tiny_overrides


def _initial_params(seed=0):
    from ifrl.models import load_model

    model, _ = load_model("tiny-random-llama", seed=seed)
    return {k: v.clone() for k, v in model.named_parameters()}


def test_cli_four_steps_single_process(tmp_path):
    run_dir = tmp_path / "run"
    t0 = time.time()
    proc = subprocess.run([PY, "-m", "ifrl", "train", "--config", "configs/tiny-cpu.yaml",
                           *tiny_overrides(run_dir)], cwd=REPO, env=child_env(), capture_output=True,
                          text=True, timeout=300)
    wall = time.time() - t0
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert wall < time_limit(120), f"4 steps took {wall:.1f}s"
    rows = read_metrics(run_dir)
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    assert all(math.isfinite(r["loss"]) and math.isfinite(r["grad_norm"]) for r in rows)
    assert any(r["grad_norm"] > 0 for r in rows)
    assert "step     4 | reward" in proc.stdout
    # every trainable parameter moved
    final = load_policy_state(run_dir / "checkpoints" / "step_4")
    init = _initial_params()
    assert set(init) <= set(final)
    unchanged = [k for k, v in init.items() if torch.equal(v, final[k])]
    assert not unchanged, f"parameters that did not change: {unchanged}"
    assert (run_dir / "config.yaml").is_file()


def test_same_seed_identical_and_resume_bit_identical(tmp_path, config_path):
    straight = tmp_path / "straight"
    train(load_config(config_path, tiny_overrides(straight)))
    again = tmp_path / "again"
    train(load_config(config_path, tiny_overrides(again)))
    assert deterministic(read_metrics(straight)) == deterministic(read_metrics(again))

    split = tmp_path / "split"
    train(load_config(config_path, tiny_overrides(split, steps=2)))
    assert [r["step"] for r in read_metrics(split)] == [1, 2]
    with pytest.raises(ValueError, match="already holds checkpoints. Pass --resume"):
        train(load_config(config_path, tiny_overrides(split, steps=4)))
    train(load_config(config_path, tiny_overrides(split, steps=4)), resume=True)
    assert deterministic(read_metrics(split)) == deterministic(read_metrics(straight))
    a = load_policy_state(straight / "checkpoints" / "step_4")
    b = load_policy_state(split / "checkpoints" / "step_4")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_export_loads_in_transformers(tmp_path, config_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ifrl.export import export

    run_dir = tmp_path / "run"
    train(load_config(config_path, tiny_overrides(run_dir, steps=1, **{"algo.mini_batches": 1})))
    out = export(run_dir, tmp_path / "hf")
    model = AutoModelForCausalLM.from_pretrained(out)
    tok = AutoTokenizer.from_pretrained(out)
    state = load_policy_state(run_dir)
    assert all(torch.equal(p, state[k]) for k, p in model.named_parameters())
    ids = tok("hello", return_tensors="pt").input_ids
    assert model(ids).logits.shape[-1] == model.config.vocab_size
