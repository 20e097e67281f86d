"""The loop learns: a trivially learnable constraint goes from low to high reward on CPU."""

from ifrl.config import load_config
from ifrl.train import train
from train_testlib import REPO, read_metrics, tiny_overrides


def test_tiny_model_learns_lowercase(tmp_path, config_path):
    # A random model spreads probability over all 49k tokens; top-k sampling keeps the rollout
    # on a few candidates per position so that GRPO can sort lowercase ones to the top (the
    # training log-probs are still those of the full distribution).
    rows = REPO / "tests" / "fixtures" / "train" / "lowercase_rows.jsonl"
    cfg = load_config(config_path, tiny_overrides(
        tmp_path, steps=10, prompts_per_step=4, **{"data.train_files": f"[{rows}]", "rollout.n": 8,
                                                  "rollout.max_new_tokens": 4, "rollout.top_k": 10,
                                                  "optim.lr": 1e-2, "algo.kl_coef": 0.001, "algo.mini_batches": 1,
                                                  "checkpoint.save_final": "false"}))
    train(cfg)
    rewards = [r["reward_mean"] for r in read_metrics(tmp_path)]
    assert len(rewards) == 10
    first, last = sum(rewards[:2]) / 2, sum(rewards[-3:]) / 3
    assert first < 2.5, rewards  # scale 5: under half the samples are lowercase at the start
    assert last >= 4.5, rewards  # >= 90% lowercase after a few steps
