"""Where ``verify_batch`` spends its time: each id's batch check, timed inside the engine
and again when the same call is repeated back to back.

(A development tool, not one of the ``bench_*`` peer benchmarks that ``make bench`` runs.)

    NUMBA_NUM_THREADS=1 python benchmarks/profile_verify.py [--rows 541] [--reps 60] [--after none,official]

"engine" is the median time of the check's call during ``verify_batch`` on the IFEval
rows (the 541 set repeated to ``--rows``). "back to back" is the median of the same call,
with the same arguments, repeated right after itself. The two differ on machines whose
caches lose a kernel's data within milliseconds; the engine column is what a batch costs.

``--after`` names what runs before each ``verify_batch`` call, one column each, the
conditions shuffled round by round so that machine noise falls on all alike:

- ``none``: nothing; the call before was ``verify_batch`` itself (warm caches);
- ``official``: the official checker on the 541 rows, as ``bench_verify.py`` runs it
  before each of its ifrl runs;
- ``flush``: a read of a 64 MB array, which evicts the data caches and nothing else;
- ``python``: 0.1 s of interpreter work on a small working set (300k short strings into
  a 997-entry dict), which leaves most of the last-level cache alone.

Each further column's "- none" is what that state costs the part, the batch's cold start.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import random
import statistics
import sys
import time
from collections import defaultdict

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))


AFTER = ("none", "official", "flush", "python")


def polluters(rows, resp) -> dict:
    """What runs before a timed call, per ``--after`` condition (see the module doc)."""
    import numpy as np

    big = np.ones(64 << 17)  # 64 MB of float64

    def official():
        from ifrl.constraints.oracle import official_verdicts

        official_verdicts(rows, resp, "strict")

    def python():
        d = {}
        for i in range(300_000):
            d[i % 997] = str(i) + "x"

    return {"none": lambda: None, "official": official, "flush": lambda: float(big.sum()), "python": python}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=541)
    ap.add_argument("--reps", type=int, default=60)
    ap.add_argument("--after", default="none",
                    help=f"comma-separated conditions before each call, of {','.join(AFTER)} (default: none)")
    args = ap.parse_args()
    if args.rows < 1 or args.reps < 1:
        ap.error("--rows and --reps must be at least 1")
    after = args.after.split(",")
    bad = [a for a in after if a not in AFTER]
    if bad or len(set(after)) != len(after):
        ap.error(f"--after {args.after!r}: give distinct conditions out of {', '.join(AFTER)}")

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

    before = polluters(rows, resp)
    for cond in after:  # compile / load caches (and the official checker's imports)
        before[cond]()
        verify_batch(resp, ids, kws)
    # per condition: the parts' times and the whole call's, round by round
    parts: dict[str, dict[str, list[float]]] = {c: defaultdict(list) for c in after}
    totals: dict[str, list[float]] = {c: [] for c in after}
    rng = random.Random(0)
    for _ in range(args.reps):
        order = list(after)
        rng.shuffle(order)
        for cond in order:
            before[cond]()
            times.clear()
            t0 = time.perf_counter()
            verify_batch(resp, ids, kws)
            totals[cond].append(time.perf_counter() - t0)
            for name, ts in times.items():
                parts[cond][name].append(sum(ts))
    tot = {c: statistics.median(totals[c]) for c in after}
    engine_t = {c: {k: statistics.median(v) for k, v in parts[c].items()} for c in after}
    alone = {}
    for name, (fn, a) in calls.items():
        fn(*a)
        alone[name] = median_time(fn, *a)
    first = after[0]
    print(f"verify_batch, {args.rows} rows, strict, median of {args.reps} calls per condition: "
          + ", ".join(f"after {c} {tot[c] * 1e3:.2f} ms" for c in after) + "\n")
    cols = " | ".join(f"after {c} us" for c in after)
    extra = "".join(f" | {c} - {first} us" for c in after[1:])
    print(f"| part | {cols} | share ({first}) | back to back us | {first} / back to back{extra} |")
    print("|---" * (4 + len(after) + len(after[1:])) + "|")
    names = sorted(engine_t[first], key=engine_t[first].get, reverse=True)
    for name in names:
        es = [engine_t[c].get(name, 0.0) for c in after]
        b = alone[name]
        diffs = "".join(f" | {(e - es[0]) * 1e6:+.0f}" for e in es[1:])
        print(f"| {name} | " + " | ".join(f"{e * 1e6:.0f}" for e in es)
              + f" | {100 * es[0] / tot[first]:.1f}% | {b * 1e6:.0f} | {es[0] / b:.2f}{diffs} |")
    rest = [tot[c] - sum(engine_t[c].values()) for c in after]
    diffs = "".join(f" | {(r - rest[0]) * 1e6:+.0f}" for r in rest[1:])
    print("| everything else (marking, loops) | " + " | ".join(f"{r * 1e6:.0f}" for r in rest)
          + f" | {100 * rest[0] / tot[first]:.1f}% | | {diffs} |")
    diffs = "".join(f" | {(tot[c] - tot[first]) * 1e6:+.0f}" for c in after[1:])
    print("| **whole call** | " + " | ".join(f"{tot[c] * 1e6:.0f}" for c in after) + f" | 100% | | {diffs} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
