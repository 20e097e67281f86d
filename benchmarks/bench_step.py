"""Time per phase of one training step (rollout, reward, log-prob, update, weight sync) and tokens/s.

Runs the real trainer (``ifrl.train.train``) on a config and reads the per-step phase times it
logs in metrics.jsonl. The peer, in the same run and interleaved round by round, is the same
step without packing: one sequence per micro-batch (``parallel.micro_batch_size=1``), which is
what a trainer that pads per sequence does at best. Step 1 of every run is warm-up and dropped.

    python benchmarks/bench_step.py                      # tiny random Llama on CPU
    python benchmarks/bench_step.py --config configs/smollm2-cpu.yaml --steps 3 --reps 1
    python benchmarks/bench_step.py --config configs/tiny-cpu.yaml --set model.name=/models/qwen0.5b-random \\
        --set parallel.mixed_precision=true --tag _gpu    # on a GPU: a Qwen2.5-0.5B-sized local folder

Writes benchmarks/results/bench_step<tag>.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, ROOT, environment  # noqa: E402

PHASES = ("time_rollout_s", "time_reward_s", "time_logprob_s", "time_update_s", "time_sync_s", "step_time_s")


def _run(config: str, overrides: list[str]) -> list[dict]:
    from ifrl.config import load_config
    from ifrl.train import train

    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(config, [*overrides, f"run_dir={tmp}/run", "checkpoint.save_final=false",
                                   "logging.progress_bar=false"])
        run_dir = train(cfg)
        return [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines() if x]


def _summary(rows: list[dict]) -> dict:
    out = {}
    for key in (*PHASES, "tok_per_s", "tokens", "peak_mem_gb"):
        vals = sorted(r[key] for r in rows)
        q = statistics.quantiles(vals, n=4) if len(vals) >= 2 else [vals[0]] * 3
        out[key] = {"median": statistics.median(vals), "p25": q[0], "p75": q[2], "min": vals[0], "max": vals[-1]}
    out["steps_measured"] = len(rows)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default=str(ROOT / "configs" / "tiny-cpu.yaml"))
    p.add_argument("--steps", type=int, default=4, help="steps per run (the first is warm-up)")
    p.add_argument("--reps", type=int, default=2, help="runs per variant, interleaved")
    p.add_argument("--set", action="append", default=[], help="config override key=value (repeatable)")
    p.add_argument("--tag", default="")
    args = p.parse_args(argv)

    import torch

    variants = {"packed (ifrl)": [], "one sequence per micro-batch": ["parallel.micro_batch_size=1"]}
    rows: dict[str, list[dict]] = {k: [] for k in variants}
    for _ in range(args.reps):
        for name, extra in variants.items():
            rows[name] += _run(args.config, [*args.set, f"steps={args.steps}", *extra])[1:]
    device = "cuda" if torch.cuda.is_available() else "cpu"
    result = {"bench": "step", "config": str(Path(args.config).relative_to(ROOT) if Path(args.config).is_absolute()
                                            and ROOT in Path(args.config).parents else args.config),
              "overrides": args.set, "steps": args.steps, "reps": args.reps, **environment(device),
              "variants": {k: _summary(v) for k, v in rows.items()}}
    base = result["variants"]["one sequence per micro-batch"]["time_update_s"]["median"]
    ours = result["variants"]["packed (ifrl)"]["time_update_s"]["median"]
    result["update_speedup_packed"] = base / ours if ours else None
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = RESULTS / f"bench_step{args.tag}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=1))
    lines = [f"# Training step phases: {result['config']} {' '.join(args.set)}", "",
             f"{result['device']}; torch {result['versions']['torch']}; git {result['git_sha']}; "
             f"{args.reps} runs x {args.steps - 1} measured steps per variant (median [p25, p75]).", "",
             "| variant | rollout s | reward s | log-prob s | update s | sync s | step s | tok/s | peak mem GB |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, s in result["variants"].items():
        cell = lambda k, f="{:.3f}": f"{f.format(s[k]['median'])} [{f.format(s[k]['p25'])}, {f.format(s[k]['p75'])}]"  # noqa: E731
        lines.append(f"| {name} | " + " | ".join(cell(k) for k in PHASES) + f" | {cell('tok_per_s', '{:.0f}')} | "
                     f"{s['peak_mem_gb']['max']:.2f} |")
    lines += ["", f"Update phase, packed vs one sequence per micro-batch: {result['update_speedup_packed']:.2f}x."]
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
