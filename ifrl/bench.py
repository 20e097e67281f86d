"""Run the benchmark scripts in benchmarks/ (one script per measured thing).

Each script writes JSON rows and a markdown table into benchmarks/results/. Examples:
``ifrl bench --list``, ``ifrl bench verify``, ``ifrl bench logprob -- --help``, ``ifrl bench all``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path


def benchmarks_dir() -> Path:
    d = Path(__file__).resolve().parent.parent / "benchmarks"
    if not d.is_dir():
        raise SystemExit("ifrl bench: benchmarks/ was not found next to the ifrl package; the benchmarks "
                         "ship with the source tree: clone the repository and `make setup`.")
    return d


def available() -> dict[str, Path]:
    return {p.stem.removeprefix("bench_"): p for p in sorted(benchmarks_dir().glob("bench_*.py"))}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", nargs="?", help="benchmark name (bench_<name>.py) or 'all'")
    p.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    p.add_argument("args", nargs=argparse.REMAINDER, help="arguments passed to the script (after --)")


def run(args) -> int:
    scripts = available()
    if args.list or not args.name:
        for name, path in scripts.items():
            print(f"{name:16s} {path}")
        return 0
    if args.name == "all":
        chosen = list(scripts.values())
    elif args.name in scripts:
        chosen = [scripts[args.name]]
    else:
        print(f"ifrl bench: unknown benchmark {args.name!r}; available: {', '.join(scripts) or 'none'}",
              file=sys.stderr)
        return 2
    extra = [a for a in (args.args or []) if a != "--"]
    rc = 0
    for script in chosen:
        print(f"== {script.name}", flush=True)
        rc = subprocess.call([sys.executable, str(script), *extra]) or rc
    return rc
