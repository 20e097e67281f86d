"""Where ``verify_batch`` spends its time: each id's batch check, timed inside the engine
and again when the same call is repeated back to back.

(A development tool, not one of the ``bench_*`` peer benchmarks that ``make bench`` runs.)

    NUMBA_NUM_THREADS=1 python benchmarks/profile_verify.py [--rows 541] [--reps 60]

"engine" is the median time of the check's call during ``verify_batch`` on the IFEval
rows (the 541 set repeated to ``--rows``). "back to back" is the median of the same call,
with the same arguments, repeated right after itself. The two differ on machines whose
caches lose a kernel's data within milliseconds; the engine column is what a batch costs.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import time
from collections import defaultdict

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=541)
    ap.add_argument("--reps", type=int, default=60)
    args = ap.parse_args()
    if args.rows < 1 or args.reps < 1:
        ap.error("--rows and --reps must be at least 1")

    from bench_verify import load_rows

    from ifrl.constraints import engine, verify_batch

    rows = load_rows()
    rows = (rows * (args.rows // len(rows) + 1))[: args.rows]
    resp = [r["response"] for r in rows]
    ids = [r["instruction_id_list"] for r in rows]
    kws = [r["kwargs"] for r in rows]

    times: dict[str, list[float]] = defaultdict(list)
    calls: dict[str, tuple] = {}

    def timed(name, fn):
        def run(*a):
            t0 = time.perf_counter()
            out = fn(*a)
            times[name].append(time.perf_counter() - t0)
            calls[name] = (fn, a)
            return out

        return run

    reg = engine.registry()
    wrapped: dict = {}
    for iid, spec in list(reg.items()):
        change = {}
        if spec.batch is not None:
            change["batch"] = timed(iid, spec.batch)
        if spec.shared is not None:
            if spec.shared not in wrapped:
                wrapped[spec.shared] = timed("shared: " + spec.shared.__name__.strip("_"), spec.shared)
            change["shared"] = wrapped[spec.shared]
        if change:
            reg[iid] = dataclasses.replace(spec, **change)
    plan = engine._plan
    engine._plan = timed("_plan (grouping, kwargs)", plan)

    def median_time(fn, *a):
        ts = []
        for _ in range(args.reps):
            t0 = time.perf_counter()
            fn(*a)
            ts.append(time.perf_counter() - t0)
        return statistics.median(ts)

    for _ in range(3):  # compile / load caches
        verify_batch(resp, ids, kws)
    times.clear()
    tot = median_time(verify_batch, resp, ids, kws)
    engine_t = {k: statistics.median(v) for k, v in times.items()}
    alone = {}
    for name, (fn, a) in calls.items():
        fn(*a)
        alone[name] = median_time(fn, *a)
    print(f"verify_batch, {args.rows} rows, strict: median {tot * 1e3:.2f} ms over {args.reps} calls\n")
    print("| part | engine us | share | back to back us | engine / back to back |")
    print("|---|---|---|---|---|")
    for name in sorted(engine_t, key=engine_t.get, reverse=True):
        e, b = engine_t[name], alone[name]
        print(f"| {name} | {e * 1e6:.0f} | {100 * e / tot:.1f}% | {b * 1e6:.0f} | {e / b:.2f} |")
    rest = tot - sum(engine_t.values())
    print(f"| everything else (marking, loops) | {rest * 1e6:.0f} | {100 * rest / tot:.1f}% | | |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
