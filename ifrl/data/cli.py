"""Build multi-constraint instruction datasets with the incremental curriculum, or check a data file.

`ifrl data build --out FILE.jsonl|.parquet [options]` draws hard constraints from the verifier
registry (and optional soft ones) for plain seed tasks, expands levels L1..LK, and prints
counts per level and per id. `ifrl data check FILE` loads any supported format and prints the
same counts (or the first error with file, row and field).
"""

from __future__ import annotations

import argparse
import json
import sys


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ifrl.data.build import BuildConfig

    d = BuildConfig()
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION")
    b = sub.add_parser("build", help="generate multi-constraint rows from seed tasks")
    b.add_argument("--out", required=True, help="output file (.jsonl or .parquet)")
    b.add_argument("--tasks", default=None, help="seed tasks file, one instruction per line (default: 300 packaged)")
    b.add_argument("--num-instructions", type=int, default=d.num_instructions,
                   help="full instructions to make; each gives K curriculum rows (default %(default)s)")
    b.add_argument("--min-constraints", type=int, default=d.min_constraints)
    b.add_argument("--max-constraints", type=int, default=d.max_constraints)
    b.add_argument("--ids", type=_csv, default=None, help="comma-separated hard ids to draw from (default: all)")
    b.add_argument("--exclude-ids", type=_csv, default=[], help="comma-separated hard ids never to draw")
    b.add_argument("--require-ids", type=_csv, default=[], help="comma-separated hard ids every instruction has")
    b.add_argument("--require-position", choices=["first", "last"], default=d.require_position)
    b.add_argument("--fixed-kwargs", type=json.loads, default={},
                   help='JSON: per-id kwargs replacing sampled ones, e.g. '
                        '\'{"length_constraints:number_words": {"relation": "at least"}}\'')
    b.add_argument("--soft-prob", type=float, default=d.soft_prob,
                   help="probability that a constraint is soft (reward-model scored); default 0")
    b.add_argument("--soft-pool", default=None, help="soft constraints file, 'category<TAB>text' per line")
    b.add_argument("--response-words", type=int, default=d.response_words,
                   help="answer length the constraints should fit (scales counts); default %(default)s")
    b.add_argument("--levels", choices=["all", "top"], default=d.levels)
    b.add_argument("--include-base", action="store_true", help="also emit level 0 (the bare task)")
    b.add_argument("--order", choices=["mixed", "staged", "none"], default=d.order)
    b.add_argument("--seed", type=int, default=d.seed)
    b.add_argument("--list-ids", action="store_true", help="print the hard ids the builder knows and exit")
    c = sub.add_parser("check", help="load a data file in any supported format and print counts")
    c.add_argument("path")
    c.add_argument("--json", action="store_true", help="print the counts as JSON")


def run(args) -> int:
    from ifrl.data.build import BuildConfig, build_rows, format_summary, summarize
    from ifrl.data.loaders import load_rows, write_rows

    if args.data_command == "check":
        try:
            rows = load_rows(args.path)
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        s = summarize(rows)
        print(json.dumps(s) if args.json else format_summary(s))
        return 0
    if args.data_command != "build":
        print("usage: ifrl data {build,check} ... (see ifrl data build --help)", file=sys.stderr)
        return 2
    if args.list_ids:
        from ifrl.data.constraint_specs import DEFAULT_IDS, SPECS

        for iid in SPECS:
            print(iid + ("" if iid in DEFAULT_IDS else "  (opt-in)"))
        return 0
    cfg = BuildConfig(
        tasks=args.tasks, num_instructions=args.num_instructions, min_constraints=args.min_constraints,
        max_constraints=args.max_constraints, ids=args.ids, exclude_ids=args.exclude_ids,
        require_ids=args.require_ids, require_position=args.require_position, fixed_kwargs=args.fixed_kwargs,
        soft_prob=args.soft_prob,
        soft_pool=args.soft_pool, response_words=args.response_words, levels=args.levels,
        include_base=args.include_base, order=args.order, seed=args.seed,
    )
    try:
        rows = build_rows(cfg)
        path = write_rows(rows, args.out)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {path}")
    print(format_summary(summarize(rows)))
    return 0
