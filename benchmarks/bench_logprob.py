"""Per-token log-prob (+ entropy) of an LM head: fused vs materialised logits.

Providers (each computes logprobs[N] of ``hidden @ weight.T / T`` at the labels):
  naive         logits materialised, ``log_softmax`` + gather (what most RL trainers do)
  compile       ``torch.compile`` of naive
  torch-chunked ifrl.kernels, impl="torch" (the CPU runtime path: tiles + recompute; its fp32 CPU
                GEMMs go through oneDNN, see kernels/_cpu_gemm.py)
  torch-chunked-mm  the same path with every GEMM through torch.mm (MKL here), as naive uses
  ifrl-triton   ifrl.kernels, impl="triton" (CUDA only)
  liger         Liger-Kernel's fused linear cross entropy, summed (CUDA, when installed)
Modes: ``fwd`` and ``fwd+bwd`` (backward of ``sum(logp * g)`` into hidden and weight).

Inputs: every 17th label is -100 (padding; ``--ignore-every``): torch-chunked spends no GEMM
work on those rows, naive computes their logits like any other.

Reported: median seconds over interleaved repeats, spread, useful TFLOP/s (2NHV forward,
6NHV forward+backward, the same count for every provider: fused paths do more arithmetic, as
they recompute logits in the backward) and peak extra memory (see benchmarks/_common.py).

    python benchmarks/bench_logprob.py                      # CPU, the N=8192 H=1024 V=32768 fp32 case
    python benchmarks/bench_logprob.py --device cuda --dtype bf16 --shape 16384,3584,152064
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

IGNORE = -100
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def make_inputs(N, H, V, dtype, device, seed=0, ignore_every=17):
    g = torch.Generator().manual_seed(seed)
    hidden = (torch.randn(N, H, generator=g) * H**-0.5 * 4).to(device, dtype)
    weight = (torch.randn(V, H, generator=g) * 0.5).to(device, dtype)
    labels = torch.randint(0, V, (N,), generator=g)
    if ignore_every:
        labels[::ignore_every] = IGNORE  # some padding
    up = torch.randn(N, generator=g).to(device)
    return hidden, weight, labels.to(device), up


def naive(hidden, weight, labels, temperature, entropy):
    logits = (hidden @ weight.T).float() / temperature
    logp_all = torch.log_softmax(logits, -1)
    valid = labels != IGNORE
    logp = logp_all.gather(-1, labels.clamp(min=0)[:, None]).squeeze(-1) * valid
    if not entropy:
        return logp
    probs = torch.softmax(logits, -1)
    return logp, (torch.logsumexp(logits, -1) - (probs * logits).sum(-1)) * valid


def provider_fns(names, device, temperature, entropy):
    from ifrl.kernels import fused_linear_logprobs

    fns = {}
    for name in names:
        if name == "naive":
            fns[name] = lambda h, w, l: naive(h, w, l, temperature, entropy)
        elif name == "compile":
            compiled = torch.compile(naive, dynamic=False)
            fns[name] = lambda h, w, l, c=compiled: c(h, w, l, temperature, entropy)
        elif name == "torch-chunked":
            fns[name] = lambda h, w, l: fused_linear_logprobs(h, w, l, temperature, entropy, impl="torch")
        elif name == "torch-chunked-mm":
            from ifrl_kernels._cpu_gemm import torch_mm_only

            fns[name] = lambda h, w, l: fused_linear_logprobs(h, w, l, temperature, entropy, impl="torch")
            fns[name].context = torch_mm_only
        elif name == "ifrl-triton":
            if not device.startswith("cuda"):
                continue
            fns[name] = lambda h, w, l: fused_linear_logprobs(h, w, l, temperature, entropy, impl="triton")
        elif name == "liger":
            try:
                from liger_kernel.transformers import LigerFusedLinearCrossEntropyLoss
            except Exception:
                continue
            if not device.startswith("cuda") or entropy:
                continue
            loss_mod = LigerFusedLinearCrossEntropyLoss(reduction="sum")
            fns[name] = lambda h, w, l, m=loss_mod: -m(w, h, l)
        else:
            raise SystemExit(f"unknown provider {name!r}")
    return fns


def run_once(fn, hidden, weight, labels, up, mode):
    with getattr(fn, "context", contextlib.nullcontext)():  # e.g. torch-chunked-mm: forward and backward
        _run_once(fn, hidden, weight, labels, up, mode)


def _run_once(fn, hidden, weight, labels, up, mode):
    if mode == "fwd":
        with torch.no_grad():
            fn(hidden, weight, labels)
        return
    h = hidden.detach().requires_grad_()
    w = weight.detach().requires_grad_()
    out = fn(h, w, labels)
    if isinstance(out, tuple):
        loss = (out[0] * up).sum() + out[1].sum()
    elif out.dim() == 0:
        loss = out
    else:
        loss = (out * up).sum()
    loss.backward()


def child(argv):
    """Fresh process: build inputs, run one provider once, report the peak extra memory."""
    ap = argparse.ArgumentParser()
    ap.add_argument("provider")
    ap.add_argument("mode")
    ap.add_argument("--shape")
    ap.add_argument("--dtype")
    ap.add_argument("--temperature", type=float)
    ap.add_argument("--entropy", action="store_true")
    ap.add_argument("--ignore-every", type=int, default=17)
    a = ap.parse_args(argv)
    N, H, V = map(int, a.shape.split(","))
    hidden, weight, labels, up = make_inputs(N, H, V, DTYPES[a.dtype], "cpu", ignore_every=a.ignore_every)
    fn = provider_fns([a.provider], "cpu", a.temperature, a.entropy)[a.provider]
    if a.provider == "compile":  # compile first (same shapes) so that compiler memory is not counted
        run_once(fn, hidden, weight, labels, up, a.mode)
    reset_ok = _common.reset_peak_rss()
    before = _common.rss_bytes()
    run_once(fn, hidden, weight, labels, up, a.mode)
    peak = _common.peak_rss_bytes()
    print(json.dumps({"peak_extra_bytes": peak - before, "rss_before": before, "hwm_reset": reset_ok}))


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        return child(sys.argv[2:])
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--shape", default="8192,1024,32768", help="N,H,V")
    ap.add_argument("--dtype", default="fp32", choices=sorted(DTYPES))
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--entropy", action="store_true", help="also compute the entropy")
    ap.add_argument("--ignore-every", type=int, default=17,
                    help="label every k-th row -100 (padding; 0: none); torch-chunked skips those rows")
    ap.add_argument("--providers", default="naive,torch-chunked,torch-chunked-mm,compile,ifrl-triton,liger")
    ap.add_argument("--modes", default="fwd,fwd+bwd")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--no-memory", action="store_true", help="skip the peak-memory measurement")
    ap.add_argument("--tag", default="", help="suffix of the result file names")
    a = ap.parse_args()
    N, H, V = map(int, a.shape.split(","))
    dtype = DTYPES[a.dtype]
    env = _common.environment(a.device)
    hidden, weight, labels, up = make_inputs(N, H, V, dtype, a.device, ignore_every=a.ignore_every)
    fns = provider_fns(a.providers.split(","), a.device, a.temperature, a.entropy)
    rows = []
    for mode in a.modes.split(","):
        calls = {k: (lambda fn=fn: run_once(fn, hidden, weight, labels, up, mode)) for k, fn in fns.items()}
        times = _common.time_interleaved(calls, a.device, a.reps, a.warmup)
        flops = (2 if mode == "fwd" else 6) * N * H * V
        for name in fns:
            row = {"bench": "logprob", "provider": name, "mode": mode, "N": N, "H": H, "V": V, "dtype": a.dtype,
                   "entropy": a.entropy, "temperature": a.temperature, "ignore_every": a.ignore_every,
                   **_common.summarize(times[name]),
                   "times_s": times[name], "env": env}
            row["tflops"] = flops / row["median_s"] / 1e12
            if not a.no_memory:
                if a.device.startswith("cuda"):
                    torch.cuda.synchronize()
                    torch.cuda.reset_peak_memory_stats()
                    base = torch.cuda.memory_allocated()
                    calls[name]()
                    torch.cuda.synchronize()
                    row["peak_extra_mib"] = (torch.cuda.max_memory_allocated() - base) / 2**20
                    row["memory_method"] = "torch.cuda.max_memory_allocated - allocated before"
                else:
                    argv = [name, mode, "--shape", a.shape, "--dtype", a.dtype, "--temperature", str(a.temperature),
                            "--ignore-every", str(a.ignore_every)]
                    res = _common.child_peak(__file__, argv + (["--entropy"] if a.entropy else []))
                    row["peak_extra_mib"] = res["peak_extra_bytes"] / 2**20
                    row["memory_method"] = "subprocess VmHWM (reset before the call) - RSS before the call"
            rows.append(row)
            print(json.dumps({k: v for k, v in row.items() if k not in ("env", "times_s")}), flush=True)
        base = next((r for r in rows if r["mode"] == mode and r["provider"] == "naive"), None)
        if base:
            for r in rows:
                if r["mode"] == mode:
                    r["time_vs_naive"] = r["median_s"] / base["median_s"]
                    # Rounds are interleaved, so round i of every provider saw about the same load.
                    r["round_time_vs_naive"] = [a / b for a, b in zip(r["times_s"], base["times_s"])]
                    r["rounds_vs_naive"] = "/".join(f"{x:.2f}" for x in r["round_time_vs_naive"])
                    if "peak_extra_mib" in r and base.get("peak_extra_mib"):
                        r["mem_vs_naive"] = r["peak_extra_mib"] / base["peak_extra_mib"]
    cols = [("provider", "provider"), ("mode", "mode"), ("median s", "median_s"), ("spread %", "spread_pct"),
            ("reps", "reps"), ("TFLOP/s", "tflops"), ("peak extra MiB", "peak_extra_mib"),
            ("time / naive", "time_vs_naive"), ("per round / naive", "rounds_vs_naive"),
            ("mem / naive", "mem_vs_naive")]
    ign = f"every {a.ignore_every}th label -100" if a.ignore_every else "no label -100"
    note = (f"N={N} H={H} V={V} {a.dtype}, temperature {a.temperature}, entropy={a.entropy}, {ign}; "
            "TFLOP/s counts 2NHV (fwd) / 6NHV (fwd+bwd) for every provider (all N rows, ignored ones included).")
    tag = a.tag or f"_{a.device.split(':')[0]}_{N}x{H}x{V}_{a.dtype}" + ("_ent" if a.entropy else "")
    paths = _common.write_results("bench_logprob", rows, cols, note, tag=tag)
    print(f"wrote {paths[0]} and {paths[1]}")


if __name__ == "__main__":
    main()
