"""Evaluate instruction following on IFEval, IFBench or your own rows: generate (or read) responses, verify, report.

`ifrl eval --model NAME|PATH --data ifeval|ifbench|FILE` generates one response per prompt with
the rollout engine (greedy unless --temperature > 0); `ifrl eval --responses FILE --data ...`
scores existing responses (matched by prompt text, as IFEval's own tool does). Both print
prompt-level and instruction-level accuracy (strict and loose) and a per-id table, and write
IFEval-format files, scores.json and a markdown report with a per-id bar chart to --out.
`--compare DIR ...` puts earlier evaluations side by side (e.g. before/after training).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", help="model to generate with: smollm2-135m-instruct, tiny-random-llama, an HF folder, "
                                     "or an ifrl export")
    src.add_argument("--responses", help="score existing responses: JSONL with 'prompt' and 'response' "
                                         "(IFEval's input_response_data format) or chat rows")
    parser.add_argument("--data", default="ifeval",
                        help="'ifeval' (541 prompts), 'ifbench' (300), or a rows file in any supported format")
    parser.add_argument("--limit", type=int, default=None, help="evaluate only the first N prompts (after --offset)")
    parser.add_argument("--offset", type=int, default=0, help="skip the first N prompts")
    parser.add_argument("--out", default=None, help="output directory (default runs/eval/<name>)")
    parser.add_argument("--name", default=None, help="label in tables and charts (default: model or file name)")
    parser.add_argument("--compare", nargs="+", default=[], metavar="DIR",
                        help="earlier `ifrl eval --out` directories to show side by side, listed first")
    g = parser.add_argument_group("generation (with --model)")
    g.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    g.add_argument("--top-p", type=float, default=1.0)
    g.add_argument("--max-new-tokens", type=int, default=512)
    g.add_argument("--batch-size", type=int, default=16)
    g.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda, cuda:N")
    g.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"],
                   help="auto = bfloat16 on GPU, float32 on CPU")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--threads", type=int, default=None,
                   help="CPU threads for torch (default: torch's choice; 1 is faster on a busy machine)")
    g.add_argument("--system-prompt", default=None, help="system message added to every prompt")
    g.add_argument("--answer-after", default=None, metavar="MARKER",
                   help="score only the text after the last MARKER (e.g. '</think>'); missing marker = empty answer")


def load_eval_rows(data: str, *, offset: int = 0, limit: int | None = None) -> list[dict]:
    from ifrl.data.loaders import load_ifbench, load_ifeval, load_rows

    if data == "ifeval":
        rows = load_ifeval()
    elif data == "ifbench":
        rows = load_ifbench()
    else:
        rows = load_rows(data)
    if offset < 0 or (limit is not None and limit < 1):
        raise ValueError(f"offset={offset}, limit={limit}; fix: offset >= 0 and limit >= 1")
    rows = rows[offset:]
    if limit is not None:
        rows = rows[:limit]
    if not rows:
        raise ValueError(f"no prompts left in {data!r} after offset={offset}; fix: lower --offset")
    for i, r in enumerate(rows):
        if not r["instruction_id_list"]:
            raise ValueError(f"{data}: row {offset + i} (key {r['key']!r}): field 'instruction_id_list' is empty; "
                             "fix: evaluation needs at least one constraint per prompt")
    return rows


def match_responses(rows: list[dict], path: str) -> list[str]:
    """Responses for ``rows`` from a responses file, matched by prompt (then by key)."""
    from ifrl.data.loaders import load_responses

    by_prompt = load_responses(path)
    by_key: dict = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                obj = json.loads(line)
                if isinstance(obj, dict) and "key" in obj and isinstance(obj.get("response"), str):
                    by_key[obj["key"]] = obj["response"]
    out, missing = [], []
    for r in rows:
        if r["prompt"] in by_prompt:
            out.append(by_prompt[r["prompt"]])
        elif r["key"] in by_key:
            out.append(by_key[r["key"]])
        else:
            missing.append(r["key"])
    if missing:
        raise ValueError(f"{path}: no response for {len(missing)} of {len(rows)} prompts (first key: {missing[0]!r}); "
                         "fix: give a response per prompt (matched by prompt text or key), or use --limit/--offset")
    return out


def _resolve_device(device: str, dtype: str):
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dtype == "auto":
        dt = torch.bfloat16 if dev.type == "cuda" else torch.float32
    else:
        dt = getattr(torch, dtype)
    return dev, dt


def evaluate_model(model, tokenizer, rows: list[dict], *, name: str, device="cpu", temperature: float = 0.0,
                   top_p: float = 1.0, max_new_tokens: int = 512, batch_size: int = 16, seed: int = 0,
                   system_prompt: str | None = None, answer_after: str | None = None, progress: bool = True):
    """Generate with the transformers rollout engine and score; returns an ``EvalResult``."""
    from ifrl.eval.generate import generate_responses, strip_reasoning
    from ifrl.eval.scoring import score_responses
    from ifrl.rollout import make_engine

    engine = make_engine("hf", model, tokenizer, batch_size=batch_size, device=device)
    t0 = time.perf_counter()
    texts, lengths = generate_responses(engine, rows, temperature=temperature, top_p=top_p,
                                        max_new_tokens=max_new_tokens, seed=seed, system_prompt=system_prompt,
                                        batch_size=batch_size, progress=progress)
    gen_s = time.perf_counter() - t0
    answers = [strip_reasoning(t, answer_after) for t in texts]
    meta = {"generation_s": round(gen_s, 2), "temperature": temperature, "max_new_tokens": max_new_tokens,
            "seed": seed, "mean_response_tokens": round(sum(lengths) / max(len(lengths), 1), 2),
            "frac_hit_max_tokens": round(sum(n >= max_new_tokens for n in lengths) / max(len(lengths), 1), 4)}
    return score_responses(rows, answers, name=name, meta=meta)


def run(args) -> int:
    from ifrl.eval.report import summary_lines, write_report
    from ifrl.eval.scoring import load_result, score_responses

    try:
        rows = load_eval_rows(args.data, offset=args.offset, limit=args.limit)
        earlier = [load_result(d) for d in args.compare]
        if args.responses:
            name = args.name or Path(args.responses).stem
            responses = match_responses(rows, args.responses)
            result = score_responses(rows, responses, name=name, meta={"source": str(args.responses)})
        else:
            from ifrl.models import load_model

            name = args.name or Path(str(args.model)).name
            device, dtype = _resolve_device(args.device, args.dtype)
            if args.threads:
                import torch

                torch.set_num_threads(args.threads)
            print(f"loading {args.model} on {device} ({str(dtype).replace('torch.', '')})", file=sys.stderr)
            model, tok = load_model(args.model, dtype=dtype, device=device, seed=args.seed)
            print(f"generating {len(rows)} responses (temperature {args.temperature}, "
                  f"max {args.max_new_tokens} new tokens)", file=sys.stderr)
            result = evaluate_model(model, tok, rows, name=name, device=device, temperature=args.temperature,
                                    top_p=args.top_p, max_new_tokens=args.max_new_tokens,
                                    batch_size=args.batch_size, seed=args.seed, system_prompt=args.system_prompt,
                                    answer_after=args.answer_after)
            result.meta["model"] = str(args.model)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    out = Path(args.out or Path("runs") / "eval" / name)
    result.meta["data"] = args.data
    metrics = result.write(out)
    print("\n".join(summary_lines(metrics)))
    report = write_report(earlier + [metrics], out, title=f"ifrl eval: {args.data}")
    print(f"wrote {out}/eval_results_strict.jsonl, eval_results_loose.jsonl, responses.jsonl, scores.json")
    print(f"report: {report}")
    return 0
