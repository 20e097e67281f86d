"""Advantages, and advantage + loss end to end, against a per-group Python loop.

Sections:
  group     GRPO advantages [B]: per-group Python loop vs ifrl torch (vs ifrl Triton on CUDA)
  gae       GAE [B, T] (loop over T, vectorised over B: ifrl torch) vs the Triton scan (CUDA)
  pipeline  rewards [B] -> GRPO advantages -> token advantages -> PPO-clip + k3 loss, forward
            and backward. Baseline: the per-group loop, an explicit [B, T] broadcast and eager
            loss ops with autograd. ifrl: group_advantages + policy_loss with per-sequence
            advantages (impl torch, compile, and triton on CUDA).

    python benchmarks/bench_advantage.py                # CPU, B=4096 T=2048 group 8
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402
from _baselines import eager_policy_loss, grpo_per_group_loop  # noqa: E402
from bench_loss import make_inputs  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--shape", default="4096,2048", help="B,T")
    ap.add_argument("--group-size", type=int, default=8)
    ap.add_argument("--sections", default="group,gae,pipeline")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--tag", default="")
    a = ap.parse_args()
    from ifrl.kernels import gae_advantages, group_advantages, policy_loss

    B, T = map(int, a.shape.split(","))
    G = a.group_size
    dev = a.device
    cuda = dev.startswith("cuda")
    env = _common.environment(dev)
    g = torch.Generator().manual_seed(0)
    rewards = (torch.randint(0, 6, (B,), generator=g).float() / 5).to(dev)
    group_ids = [i // G for i in range(B)]
    logp, old, ref, _, mask = make_inputs(B, T, dev)
    rows = []

    def record(section, times, base_name, extra=None):
        base = _common.summarize(times[base_name])["median_s"]
        for name, ts in times.items():
            row = {"bench": "advantage", "section": section, "provider": name, "B": B, "T": T, "group_size": G,
                   **_common.summarize(ts), "times_s": ts, "env": env}
            row["speedup_vs_baseline"] = base / row["median_s"]
            row["baseline"] = base_name
            row.update(extra or {})
            rows.append(row)
            print(json.dumps({k: v for k, v in row.items() if k not in ("env", "times_s")}), flush=True)

    sections = a.sections.split(",")
    if "group" in sections:
        calls = {"per-group-loop": lambda: grpo_per_group_loop(rewards.cpu(), group_ids),
                 "ifrl-torch": lambda: group_advantages(rewards, G, "grpo", impl="torch")}
        if cuda:
            calls["ifrl-triton"] = lambda: group_advantages(rewards, G, "grpo", impl="triton")
        record("group", _common.time_interleaved(calls, dev, a.reps), "per-group-loop")

    if "gae" in sections:
        values = torch.randn(B, T, generator=g).to(dev)
        tok_rewards = torch.zeros(B, T, device=dev)
        calls = {"ifrl-torch": lambda: gae_advantages(tok_rewards, values, mask, 1.0, 0.95, impl="torch")}
        if cuda:
            calls["ifrl-triton"] = lambda: gae_advantages(tok_rewards, values, mask, 1.0, 0.95, impl="triton")
        record("gae", _common.time_interleaved(calls, dev, max(2, a.reps // 2)), "ifrl-torch")

    if "pipeline" in sections:
        def baseline():
            adv_B = grpo_per_group_loop(rewards.cpu(), group_ids).to(dev)
            adv_BT = adv_B[:, None] * mask
            x = logp.detach().requires_grad_()
            loss, _ = eager_policy_loss(x, old, ref, adv_BT, mask, 0.2, 0.01)
            loss.backward()

        def ours(impl):
            def run():
                adv_B = group_advantages(rewards, G, "grpo", impl=None if impl == "compile" else impl)
                x = logp.detach().requires_grad_()
                loss, _ = policy_loss(x, old, ref, adv_B, mask, 0.2, 0.2, "k3", 0.01, "token-mean", impl=impl)
                loss.backward()
            return run

        calls = {"loop+eager": baseline, "ifrl-torch": ours("torch"), "ifrl-compile": ours("compile")}
        if cuda:
            calls["ifrl-triton"] = ours("triton")
        record("pipeline", _common.time_interleaved(calls, dev, a.reps), "loop+eager")

    cols = [("section", "section"), ("provider", "provider"), ("median s", "median_s"), ("spread %", "spread_pct"),
            ("reps", "reps"), ("speedup vs baseline", "speedup_vs_baseline"), ("baseline", "baseline")]
    note = (f"B={B} T={T} group size {G}, fp32. pipeline = GRPO advantages + PPO-clip/k3 loss forward+backward; "
            "the compile provider's one-off compilation happens in the warm-up round and is not timed.")
    tag = a.tag or f"_{dev.split(':')[0]}_{B}x{T}"
    paths = _common.write_results("bench_advantage", rows, cols, note, tag=tag)
    print(f"wrote {paths[0]} and {paths[1]}")


if __name__ == "__main__":
    main()
