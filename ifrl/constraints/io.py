"""Reading IFEval-format JSONL files with errors that name the file, line and field."""

from __future__ import annotations

import json

REQUIRED = ("prompt", "instruction_id_list", "kwargs")


def load_jsonl(path: str) -> list[dict]:
    """All JSON objects of a JSONL file; blank lines are skipped."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{lineno}: malformed JSON ({e.msg} at column {e.colno}); fix or remove the line") from e
            if not isinstance(obj, dict):
                raise ValueError(f"{path}:{lineno}: expected a JSON object per line, got {type(obj).__name__}")
            obj["_line"] = lineno
            rows.append(obj)
    return rows


def load_ifeval(path: str, responses_path: str | None = None, require_response: bool = True) -> list[dict]:
    """IFEval rows (``prompt``, ``instruction_id_list``, ``kwargs`` and ``response``).

    With ``responses_path`` (the official tool's layout) responses are joined by prompt text.
    """
    rows = load_jsonl(path)
    by_prompt = None
    if responses_path:
        by_prompt = {}
        for r in load_jsonl(responses_path):
            if "prompt" not in r or "response" not in r:
                raise ValueError(f"{responses_path}:{r['_line']}: needs fields 'prompt' and 'response'")
            by_prompt[r["prompt"]] = r["response"]
    for r in rows:
        loc = f"{path}:{r['_line']}"
        for k in REQUIRED:
            if k not in r:
                raise ValueError(f"{loc}: missing field {k!r} (IFEval rows need {', '.join(REQUIRED)})")
        if not isinstance(r["instruction_id_list"], list):
            raise ValueError(f"{loc}: field 'instruction_id_list' must be a list of ids")
        if not isinstance(r["kwargs"], list) or len(r["kwargs"]) != len(r["instruction_id_list"]):
            raise ValueError(f"{loc}: field 'kwargs' must be a list with one object per instruction id")
        if by_prompt is not None:
            if r["prompt"] not in by_prompt:
                raise ValueError(f"{loc}: no response for this prompt in {responses_path}")
            r["response"] = by_prompt[r["prompt"]]
        if require_response and not isinstance(r.get("response"), str):
            raise ValueError(
                f"{loc}: missing string field 'response'; add it or pass --responses FILE keyed by prompt"
            )
    return rows
