"""PPO-clip + k3 KL policy loss over [B, T] tokens: fused vs unfused eager ops.

Providers:
  eager         separate PyTorch ops with autograd (the usual trainer code), token-mean
  ifrl-torch    ifrl.kernels.policy_loss, impl="torch" (forward and analytic gradient, eager)
  ifrl-compile  ifrl.kernels.policy_loss, impl="compile" (the same through torch.compile)
  ifrl-triton   ifrl.kernels.policy_loss, impl="triton" (CUDA only)
Modes: ``fwd`` (loss + metrics) and ``fwd+bwd`` (and the gradient w.r.t. logp).
GB/s counts the bytes a single fused pass must move: 5 fp32 inputs read (+1 gradient written).

    python benchmarks/bench_loss.py                     # CPU, B=4096 T=2048
    python benchmarks/bench_loss.py --device cuda
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402
from _baselines import eager_policy_loss  # noqa: E402


def make_inputs(B, T, device, seed=0):
    g = torch.Generator().manual_seed(seed)
    logp = -torch.rand(B, T, generator=g) * 3
    old = logp + 0.1 * torch.randn(B, T, generator=g)
    ref = logp + 0.1 * torch.randn(B, T, generator=g)
    adv = torch.randn(B, generator=g)[:, None].expand(B, T).contiguous()
    lengths = torch.randint(1, T + 1, (B,), generator=g)
    mask = (torch.arange(T)[None, :] < lengths[:, None]).float()
    return [t.to(device) for t in (logp, old, ref, adv, mask)]


def provider_fns(names, device):
    from ifrl.kernels import policy_loss

    fns = {}
    for name in names:
        if name == "eager":
            fns[name] = lambda lp, old, ref, adv, m: eager_policy_loss(lp, old, ref, adv, m, 0.2, 0.01)
        elif name in ("ifrl-torch", "ifrl-compile", "ifrl-triton"):
            impl = name.split("-")[1]
            if impl == "triton" and not device.startswith("cuda"):
                continue
            fns[name] = lambda lp, old, ref, adv, m, i=impl: policy_loss(
                lp, old, ref, adv, m, 0.2, 0.2, "k3", 0.01, "token-mean", impl=i)
        else:
            raise SystemExit(f"unknown provider {name!r}")
    return fns


def run_once(fn, inputs, mode):
    logp, old, ref, adv, mask = inputs
    if mode == "fwd":
        with torch.no_grad():
            fn(logp, old, ref, adv, mask)
        return
    x = logp.detach().requires_grad_()
    loss, _ = fn(x, old, ref, adv, mask)
    loss.backward()


def child(argv):
    ap = argparse.ArgumentParser()
    ap.add_argument("provider")
    ap.add_argument("mode")
    ap.add_argument("--shape")
    a = ap.parse_args(argv)
    B, T = map(int, a.shape.split(","))
    inputs = make_inputs(B, T, "cpu")
    fn = provider_fns([a.provider], "cpu")[a.provider]
    run_once(fn, [t[:2, :8].contiguous() for t in inputs], a.mode)  # compile (if any) outside the measurement
    ok = _common.reset_peak_rss()
    before = _common.rss_bytes()
    run_once(fn, inputs, a.mode)
    print(json.dumps({"peak_extra_bytes": _common.peak_rss_bytes() - before, "hwm_reset": ok}))


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        return child(sys.argv[2:])
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--shape", default="4096,2048", help="B,T")
    ap.add_argument("--providers", default="eager,ifrl-torch,ifrl-compile,ifrl-triton")
    ap.add_argument("--modes", default="fwd,fwd+bwd")
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--tag", default="")
    a = ap.parse_args()
    B, T = map(int, a.shape.split(","))
    env = _common.environment(a.device)
    inputs = make_inputs(B, T, a.device)
    fns = provider_fns(a.providers.split(","), a.device)
    rows = []
    for mode in a.modes.split(","):
        calls = {k: (lambda fn=fn: run_once(fn, inputs, mode)) for k, fn in fns.items()}
        times = _common.time_interleaved(calls, a.device, a.reps, warmup=1)
        nbytes = B * T * 4 * (5 if mode == "fwd" else 6)
        for name in fns:
            row = {"bench": "loss", "provider": name, "mode": mode, "B": B, "T": T,
                   **_common.summarize(times[name]), "times_s": times[name], "env": env}
            row["gbps"] = nbytes / row["median_s"] / 1e9
            if not a.no_memory:
                if a.device.startswith("cuda"):
                    torch.cuda.synchronize()
                    torch.cuda.reset_peak_memory_stats()
                    base = torch.cuda.memory_allocated()
                    calls[name]()
                    torch.cuda.synchronize()
                    row["peak_extra_mib"] = (torch.cuda.max_memory_allocated() - base) / 2**20
                else:
                    res = _common.child_peak(__file__, [name, mode, "--shape", a.shape])
                    row["peak_extra_mib"] = res["peak_extra_bytes"] / 2**20
            rows.append(row)
            print(json.dumps({k: v for k, v in row.items() if k not in ("env", "times_s")}), flush=True)
        base = next((r for r in rows if r["mode"] == mode and r["provider"] == "eager"), None)
        for r in rows:
            if base and r["mode"] == mode:
                r["speedup_vs_eager"] = base["median_s"] / r["median_s"]
    cols = [("provider", "provider"), ("mode", "mode"), ("median s", "median_s"), ("spread %", "spread_pct"),
            ("reps", "reps"), ("GB/s", "gbps"), ("peak extra MiB", "peak_extra_mib"),
            ("speedup vs eager", "speedup_vs_eager")]
    note = f"B={B} T={T} fp32, PPO clip 0.2, k3 KL coef 0.01, token-mean."
    tag = a.tag or f"_{a.device.split(':')[0]}_{B}x{T}"
    paths = _common.write_results("bench_loss", rows, cols, note, tag=tag)
    print(f"wrote {paths[0]} and {paths[1]}")


if __name__ == "__main__":
    main()
