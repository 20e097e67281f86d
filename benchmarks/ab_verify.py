"""Paired A/B of the verification engine: the working tree against an earlier revision.

(A development tool, not one of the ``bench_*`` peer benchmarks that ``make bench`` runs.)

On a shared machine the median speed moves by +-30% from one run to the next, which
hides 5% changes. This script runs the two engines alternately on the same batch, in
the same process, and reports the median of the per-pair time ratios (new / old, with
quartiles); slow spells hit both runs of a pair alike.

    python benchmarks/ab_verify.py --old dec47a4 [--rows 541] [--pairs 200] [--typographic]

``--typographic`` runs both on the responses as many models write them: apostrophes as
U+2019 and spaced hyphens as em dashes (the 489 ASCII responses then hold non-ASCII
text too).

The old engine is ``git archive <rev> ifrl setup.py`` unpacked into a temporary folder
(its C helpers compiled there by its ``setup.py``, where it has them) and imported first
(and run once on the batch, so that every module it imports lazily is loaded); its
modules are then set aside so that the working tree's ``ifrl`` imports under the same
name. Each engine runs with its own modules in ``sys.modules``: the engine
imports some modules inside functions, and those imports would otherwise find the other
engine's. Both give the same verdicts or the script stops.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))


def ifrl_modules() -> dict:
    """The loaded ``ifrl`` modules, by name."""
    return {m: mod for m, mod in sys.modules.items() if m == "ifrl" or m.startswith("ifrl.")}


def build_c_helpers(tree: str) -> None:
    """Compile the revision's C helpers in place with its own ``setup.py`` (where it has
    ``ifrl/constraints/_plan.c``): without them its engine would run the slower Python path."""
    if not os.path.exists(os.path.join(tree, "ifrl", "constraints", "_plan.c")):
        return
    subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--inplace", "--build-temp",
                    os.path.join(tree, "build")], cwd=tree, check=True)


def load_old(rev: str, into: str, batch):
    """The old engine's ``verify_batch`` and its modules, run once on ``batch``."""
    subprocess.run(f"git -C {ROOT} archive {rev} ifrl setup.py | tar -x -C {into}", shell=True, check=True)
    build_c_helpers(into)
    sys.path.insert(0, into)
    from ifrl.constraints import verify_batch  # the old engine

    verify_batch(*batch)
    mods = ifrl_modules()
    for m in mods:  # set aside, so that the working tree's ifrl imports under the same names
        del sys.modules[m]
    sys.path.remove(into)
    return verify_batch, mods


def with_modules(fn, mods: dict):
    """``fn`` run with ``mods`` installed in ``sys.modules`` (set before the clock starts)."""
    def run():
        sys.modules.update(mods)
        return fn

    return run


def typographic(text: str) -> str:
    """The response with typographic punctuation: U+2019 for "'", an em dash for " - "."""
    return text.replace("'", "\u2019").replace(" - ", " \u2014 ")


def paired(old, new, pairs: int) -> list[float]:
    ratios = []
    for i in range(pairs):
        order = (old, new) if i % 2 else (new, old)  # alternate which runs first
        t = {}
        for fn in order:
            call = fn()  # installs the engine's modules, returns the call to time
            s = time.process_time()
            call()
            t[fn] = time.process_time() - s
        ratios.append(t[new] / t[old])
    return ratios


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--old", required=True, help="git revision of the old engine")
    ap.add_argument("--rows", type=int, default=541, help="rows (the 541 IFEval rows, repeated)")
    ap.add_argument("--pairs", type=int, default=200)
    ap.add_argument("--mode", default="strict", choices=("strict", "loose"))
    ap.add_argument("--typographic", action="store_true", help="curly apostrophes and em dashes in the responses")
    args = ap.parse_args()

    from bench_verify import load_rows

    rows = load_rows()
    reps = (args.rows + len(rows) - 1) // len(rows)
    resp = ([r["response"] for r in rows] * reps)[: args.rows]
    if args.typographic:
        resp = [typographic(t) for t in resp]
    ids = ([r["instruction_id_list"] for r in rows] * reps)[: args.rows]
    kws = ([r["kwargs"] for r in rows] * reps)[: args.rows]
    with tempfile.TemporaryDirectory() as tmp:
        old_vb, old_mods = load_old(args.old, tmp, (resp, ids, kws, args.mode))
        sys.path.insert(0, ROOT)
        from ifrl.constraints import verify_batch as new_vb

        new_want = new_vb(resp, ids, kws, mode=args.mode)
        new_mods = ifrl_modules()
        sys.modules.update(old_mods)
        if old_vb(resp, ids, kws, mode=args.mode) != new_want:
            print("the two engines give different verdicts", file=sys.stderr)
            return 1
        gc.collect()
        gc.freeze()
        old = with_modules(lambda: old_vb(resp, ids, kws, mode=args.mode), old_mods)
        new = with_modules(lambda: new_vb(resp, ids, kws, mode=args.mode), new_mods)
        r = sorted(paired(old, new, args.pairs))
    q = len(r) // 4
    print(f"{args.rows} rows{' (typographic)' if args.typographic else ''}, {args.mode}, {args.pairs} pairs: new/old time = {statistics.median(r):.3f} "
          f"(quartiles {r[q]:.3f} - {r[-q - 1]:.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
