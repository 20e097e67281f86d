"""Every estimator / aggregation / KL mode runs through the real loop (1 step, tiny model)."""

import math

import pytest

from ifrl.config import load_config
from ifrl.train import train
from train_testlib import read_metrics, tiny_overrides


@pytest.mark.parametrize("extra", [
    {"algo.estimator": "drgrpo", "algo.loss_agg": "seq-mean-token-sum", "algo.kl": "k1"},
    {"algo.estimator": "rloo", "algo.loss_agg": "seq-mean-token-mean", "algo.kl": "k2", "algo.ppo_epochs": 2},
    {"algo.estimator": "reinforce++", "algo.kl_in_reward": "true", "algo.gamma": 0.99},
    {"algo.estimator": "gae", "algo.lam": 0.95, "algo.kl_coef": 0.0, "model.gradient_checkpointing": "true"},
], ids=["drgrpo", "rloo-2epochs", "reinforce++-kl-in-reward", "ppo-gae-critic"])
def test_algorithm_variants_run(tmp_path, config_path, extra):
    cfg = load_config(config_path, tiny_overrides(tmp_path, steps=2, prompts_per_step=2, **{
        "rollout.n": 3, "rollout.max_new_tokens": 6, "checkpoint.save_final": "false", **extra}))
    train(cfg)
    rows = read_metrics(tmp_path)
    assert [r["step"] for r in rows] == [1, 2]
    for r in rows:
        assert math.isfinite(r["loss"]) and math.isfinite(r["grad_norm"]) and r["skipped"] == 0
    assert any(r["grad_norm"] > 0 for r in rows)
    if extra["algo.estimator"] == "gae":
        assert all(math.isfinite(r["value_loss"]) for r in rows) and rows[0]["value_loss"] > 0
