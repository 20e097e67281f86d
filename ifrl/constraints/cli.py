"""Check responses against IFEval-style hard constraints and report accuracy.

Reads IFEval-format JSONL (``prompt``, ``response``, ``instruction_id_list``, ``kwargs``;
or IFEval's ``input_data.jsonl`` plus ``--responses`` keyed by prompt), writes the rows
with ``follow_instruction_list`` and ``follow_all_instructions`` added, and prints
prompt-level and instruction-level accuracy with a per-id table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--input", help="IFEval-format JSONL (rows with prompt, instruction_id_list, kwargs)")
    p.add_argument("--output", help="where to write the rows with verdicts (JSONL)")
    p.add_argument("--list", action="store_true", help="list the rule-checkable instruction ids and their kwargs, then exit")
    p.add_argument("--mode", choices=("strict", "loose"), default="strict", help="IFEval strict or loose verdicts")
    p.add_argument("--responses", default=None, help="optional JSONL of {prompt, response} joined to --input by prompt")
    p.add_argument("--summary-json", default=None, help="also write the accuracy summary as JSON here")


def _list_ids() -> int:
    from ifrl.constraints.registry import registry

    for iid, spec in sorted(registry().items()):
        kws = ", ".join(f"{k.name}:{k.kind}" + ("" if k.required else "?") for k in spec.kwargs) or "-"
        print(f"{iid:<45} {kws}")
    print("soft ids (scored by the reward model): soft, soft_content:*, situation:*, style:open_ended")
    return 0


def run(args) -> int:
    from ifrl.constraints.engine import verify_batch
    from ifrl.constraints.io import load_ifeval
    from ifrl.constraints.report import format_table, summarize

    if args.list:
        return _list_ids()
    if not args.input or not args.output:
        print("ifrl verify: error: --input and --output are required (or use --list)", file=sys.stderr)
        return 2

    try:
        rows = load_ifeval(args.input, args.responses)
        verdicts = verify_batch(
            [r["response"] for r in rows], [r["instruction_id_list"] for r in rows], [r["kwargs"] for r in rows],
            mode=args.mode, where=args.input,
        )
    except (ValueError, OSError) as e:
        print(f"ifrl verify: error: {e}", file=sys.stderr)
        return 2
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    tmp = args.output + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        for r, v in zip(rows, verdicts):
            out = {k: val for k, val in r.items() if k != "_line"}
            out["follow_instruction_list"] = v
            out["follow_all_instructions"] = all(v)
            f.write(json.dumps(out, ensure_ascii=False) + "\n")
    os.replace(tmp, args.output)
    s = summarize(verdicts, [r["instruction_id_list"] for r in rows])
    print(format_table(s, title=f"IFEval {args.mode} ({args.input})"))
    if args.summary_json:
        with open(args.summary_json, "w", encoding="utf-8") as f:
            json.dump({"mode": args.mode, **s.to_dict()}, f, indent=2)
    return 0
