"""Read instruction-following rows from the formats people have, into one row shape.

Every loader returns plain dicts in the *row format* the trainer, the verifier and the
evaluator share (the seed's format, kept as is)::

    {"key": ..., "prompt": str, "instruction_id_list": [str], "kwargs": [dict],
     "constraints": [str], "level": int, "parent": key | None}

plus, when the input had them, ``"response"`` (a model answer to score),
``"messages"`` (the chat turns before the answer) and any other non-null fields unchanged
(e.g. ``"task"``, the bare instruction a built row was composed from). Math rows use the ids ``light``
(answer compared with the last ``\\boxed{}``) and ``light_choice`` (boxed letter) with the
answer normalised into ``kwargs[0]["answer"]``.

Formats, detected by extension and fields:

* seed rows, JSONL or Parquet (``prompt``, ``instruction_id_list``, ``kwargs``,
  ``constraints``, ``key``, ``level``, ``parent``);
* IFEval ``input_data.jsonl`` and IFBench ``*.jsonl`` (same fields without ``constraints``;
  IFBench pads every kwargs dict with ``null`` for all argument names, which is dropped);
* IFEval-style response files (``prompt`` + ``response``);
* chat rows (``messages``: a list of ``{"role", "content"}``; the last user turn is the
  prompt, a trailing assistant turn becomes the response).

Integer kwargs stay integers: Parquet and some JSON writers turn ``3`` into ``3.0`` (or pad
with nulls); integral floats are turned back into ints and nulls are dropped, because the
checks compare counts with ``==``.

Bad input raises ``ValueError`` naming the file, the row (1-based line for JSONL, 0-based
index for Parquet), the field and how to fix it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Iterable

__all__ = [
    "MATH_IDS",
    "SEED_SOFT_IDS",
    "load_rows",
    "load_ifeval",
    "load_ifbench",
    "load_responses",
    "write_rows",
    "normalize_row",
    "clean_kwargs",
    "repo_data_dir",
]

#: Ids whose reward is answer matching, not a constraint check.
MATH_IDS = frozenset({"light", "light_choice"})

#: Soft ids used by the seed's data; scored by the reward model from the constraint text.
SEED_SOFT_IDS = frozenset(
    {
        "soft",
        "soft_content:language",
        "soft_content:open_ended",
        "situation:suggestion",
        "situation:role_play",
        "situation:story_generation",
        "style:open_ended",
    }
)

_PARQUET_EXT = (".parquet", ".pq")
_KNOWN_FIELDS = frozenset({"prompt", "messages", "response", "instruction_id_list", "kwargs", "constraints", "key",
                           "level", "parent", "answer"})
_JSON_EXT = (".jsonl", ".json", ".ndjson")


def repo_data_dir() -> Path:
    """The repository's ``data/`` folder (IFEval, IFBench copies)."""
    return Path(__file__).resolve().parents[2] / "data"


def _is_soft(instruction_id: str) -> bool:
    if instruction_id in SEED_SOFT_IDS or instruction_id.startswith("soft"):
        return True
    try:  # the registry knows its own soft ids; optional so loading never needs it
        from ifrl.constraints import is_soft  # type: ignore
    except Exception:
        return False
    try:
        return bool(is_soft(instruction_id))
    except Exception:
        return False


class _Where:
    """Formats the location part of an error message."""

    def __init__(self, path: str, row: int, kind: str):
        self.path, self.row, self.kind = path, row, kind

    def err(self, field: str, problem: str, fix: str) -> ValueError:
        return ValueError(f"{self.path}: {self.kind} {self.row}: field '{field}': {problem}; fix: {fix}")


def clean_kwargs(kw: Any, where: _Where | None = None, index: int = 0) -> dict:
    """Drop null arguments and turn integral floats back into ints (recursively in lists)."""
    if kw is None:
        return {}
    if isinstance(kw, str):
        # Some pipelines store each kwargs dict as a JSON string (Parquet without structs).
        try:
            kw = json.loads(kw) if kw.strip() else {}
        except json.JSONDecodeError as e:
            if where is None:
                raise
            raise where.err(f"kwargs[{index}]", f"string that is not JSON ({e.msg})",
                            "store each kwargs entry as an object like {\"num_words\": 300}") from None
        if kw is None:
            return {}
    if not isinstance(kw, dict):
        if where is None:
            raise ValueError(f"kwargs entry must be a dict, got {type(kw).__name__}")
        raise where.err(f"kwargs[{index}]", f"expected an object, got {type(kw).__name__} {kw!r:.60}",
                        "give one object per instruction id, {} when the check takes no arguments")
    return {str(k): _clean_value(v) for k, v in kw.items() if v is not None}


def _clean_value(v: Any) -> Any:
    if isinstance(v, bool):
        return v
    if isinstance(v, float) and math.isfinite(v) and v.is_integer():
        return int(v)
    if isinstance(v, (list, tuple)):
        return [_clean_value(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _clean_value(x) for k, x in v.items() if x is not None}
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):  # numpy scalars
        return _clean_value(v.item())
    if hasattr(v, "tolist") and not isinstance(v, (str, bytes)):  # numpy arrays
        return _clean_value(v.tolist())
    return v


def _as_str_list(value: Any, field: str, where: _Where) -> list[str]:
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        value = value.tolist()
    if isinstance(value, str):
        raise where.err(field, f"expected a list of strings, got the string {value!r:.60}",
                        f"wrap it in a list: [{value!r:.60}]")
    if not isinstance(value, (list, tuple)):
        raise where.err(field, f"expected a list of strings, got {type(value).__name__}",
                        "write a JSON list such as [\"punctuation:no_comma\"]")
    out = []
    for i, x in enumerate(value):
        if not isinstance(x, str):
            raise where.err(f"{field}[{i}]", f"expected a string, got {type(x).__name__} {x!r:.40}",
                            "every entry must be a string")
        out.append(x)
    return out


def _prompt_from_messages(messages: Any, where: _Where) -> tuple[str, list[dict], str | None]:
    if not isinstance(messages, (list, tuple)) or not messages:
        raise where.err("messages", "expected a non-empty list of {role, content} objects",
                        "write [{\"role\": \"user\", \"content\": \"...\"}]")
    turns: list[dict] = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or "role" not in m or "content" not in m:
            raise where.err(f"messages[{i}]", f"expected an object with 'role' and 'content', got {m!r:.60}",
                            "each turn needs both keys")
        if m["role"] not in ("system", "user", "assistant"):
            raise where.err(f"messages[{i}].role", f"unknown role {m['role']!r}",
                            "use 'system', 'user' or 'assistant'")
        if not isinstance(m["content"], str):
            raise where.err(f"messages[{i}].content", f"expected a string, got {type(m['content']).__name__}",
                            "give the turn's text as a string")
        turns.append({"role": m["role"], "content": m["content"]})
    response = None
    if turns[-1]["role"] == "assistant":
        response = turns[-1]["content"]
        turns = turns[:-1]
    if not turns or turns[-1]["role"] != "user":
        raise where.err("messages", "the conversation must end with a user turn (optionally followed by "
                        "one assistant answer)", "put the instruction in the last user message")
    return turns[-1]["content"], turns, response


def normalize_row(raw: Any, *, path: str = "<rows>", row: int = 0, kind: str = "row") -> dict:
    """Validate one raw row and return it in the shared row format (see module docstring)."""
    where = _Where(path, row, kind)
    if not isinstance(raw, dict):
        raise where.err("<row>", f"expected a JSON object, got {type(raw).__name__}",
                        "write one object per line")
    out: dict[str, Any] = {}
    messages = raw.get("messages")
    response = raw.get("response")
    if messages is not None:
        prompt, turns, chat_response = _prompt_from_messages(messages, where)
        out["messages"] = turns
        if response is None:
            response = chat_response
        if raw.get("prompt") not in (None, prompt):
            prompt = raw["prompt"]  # an explicit prompt wins; the turns are kept for the template
    else:
        if "prompt" not in raw:
            raise where.err("prompt", "missing", "add a 'prompt' string (or 'messages' for chat rows)")
        prompt = raw["prompt"]
    if not isinstance(prompt, str) or not prompt.strip():
        raise where.err("prompt", f"expected a non-empty string, got {prompt!r:.60}",
                        "give the instruction text")
    out["prompt"] = prompt

    ids = raw.get("instruction_id_list")
    ids = [] if ids is None else _as_str_list(ids, "instruction_id_list", where)
    n = len(ids)
    kwargs = raw.get("kwargs")
    if hasattr(kwargs, "tolist") and not isinstance(kwargs, (str, bytes)):
        kwargs = kwargs.tolist()
    if isinstance(kwargs, str):  # a whole list stored as one JSON string
        try:
            kwargs = json.loads(kwargs)
        except json.JSONDecodeError:
            raise where.err("kwargs", "a string that is not a JSON list",
                            "store a list with one object per instruction id") from None
    if kwargs is None:
        kwargs = [{} for _ in ids]
    if not isinstance(kwargs, (list, tuple)):
        raise where.err("kwargs", f"expected a list of objects, got {type(kwargs).__name__}",
                        "give one object per instruction id, e.g. [{}, {\"num_words\": 300}]")
    if len(kwargs) != n:
        raise where.err("kwargs", f"has {len(kwargs)} entries but instruction_id_list has {n}",
                        "give exactly one kwargs object per instruction id ({} for none)")
    kwargs = [clean_kwargs(kw, where, i) for i, kw in enumerate(kwargs)]

    constraints = raw.get("constraints")
    if constraints is None:
        constraints = list(ids)
    else:
        constraints = _as_str_list(constraints, "constraints", where)
    if len(constraints) != n:
        # The seed stores a math row's answer in constraints; everything else is one text per id.
        if not (n == 1 and ids[0] in MATH_IDS):
            raise where.err("constraints", f"has {len(constraints)} entries but instruction_id_list has {n}",
                            "give one natural-language constraint per instruction id")

    math_ids = [i for i in ids if i in MATH_IDS]
    if math_ids:
        if n != 1:
            raise where.err("instruction_id_list", f"{math_ids[0]!r} must be the only id of its row, got {ids}",
                            "put math/multiple-choice questions in rows of their own")
        answer = kwargs[0].get("answer", raw.get("answer"))
        if answer is None and constraints:
            answer = constraints[0]  # the seed's layout
        if answer is None or (isinstance(answer, str) and not answer.strip()):
            raise where.err("kwargs[0].answer", f"row with id {ids[0]!r} has no answer",
                            "add {\"answer\": \"...\"} to kwargs (or an 'answer' field)")
        kwargs[0]["answer"] = str(answer)
        constraints = [constraints[0] if constraints else str(answer)]
    for i, (iid, text) in enumerate(zip(ids, constraints)):
        if _is_soft(iid) and (not text.strip() or text == iid):
            raise where.err(f"constraints[{i}]", f"soft constraint {iid!r} has no natural-language text",
                            "soft constraints are scored from their text; write it in 'constraints'")
    out["instruction_id_list"] = ids
    out["kwargs"] = kwargs
    out["constraints"] = constraints

    key = raw.get("key", row)
    if hasattr(key, "item"):
        key = key.item()
    if not isinstance(key, (str, int)) or isinstance(key, bool):
        raise where.err("key", f"expected a string or an integer, got {type(key).__name__}", "use a unique id")
    out["key"] = key
    level = raw.get("level")
    if level is None:
        level = n
    else:
        level = _clean_value(level)
        if not isinstance(level, int) or isinstance(level, bool) or level < 0:
            raise where.err("level", f"expected a non-negative integer, got {level!r}",
                            "level k means the row keeps the first k constraints")
    out["level"] = level
    parent = _clean_value(raw.get("parent"))
    if parent is not None and not isinstance(parent, (str, int)):
        raise where.err("parent", f"expected the key of the full row, got {type(parent).__name__}",
                        "use the parent's key (a string or integer) or leave it out")
    out["parent"] = parent
    for name, value in raw.items():  # extra fields (e.g. 'task', 'source') travel with the row
        if name not in out and name not in _KNOWN_FIELDS and value is not None:
            out[name] = _clean_value(value)
    if response is not None:
        if not isinstance(response, str):
            raise where.err("response", f"expected a string, got {type(response).__name__}",
                            "give the model's answer as text")
        out["response"] = response
    return out


def _iter_jsonl(path: Path) -> Iterable[tuple[int, Any]]:
    with path.open("r", encoding="utf-8") as f:
        text = f.read()
    stripped = text.lstrip()
    if path.suffix == ".json" and stripped.startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not valid JSON at line {e.lineno}: {e.msg}; fix: write a JSON list of "
                             "objects or one object per line (.jsonl)") from None
        for i, obj in enumerate(data):
            yield i, obj
        return
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield lineno, json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: line {lineno}: not valid JSON ({e.msg} at column {e.colno}); "
                             "fix: one complete JSON object per line") from None


def _iter_parquet(path: Path) -> Iterable[tuple[int, Any]]:
    try:
        import pyarrow.parquet as pq
    except ImportError as e:  # pragma: no cover - pyarrow is a dev/demo dependency
        raise ValueError(f"{path}: reading Parquet needs pyarrow; fix: pip install pyarrow") from e
    table = pq.read_table(path)
    for i, obj in enumerate(table.to_pylist()):
        yield i, obj


def load_rows(path: str | Path, *, limit: int | None = None, check_ids: bool = False) -> list[dict]:
    """Load rows from a JSONL/JSON/Parquet file in any supported format (module docstring).

    ``limit`` keeps the first N rows. ``check_ids=True`` also requires every non-math,
    non-soft id to be known to the verifier registry (``ifrl.constraints.known_ids()``).
    Raises ``ValueError`` naming file, row, field and the fix for anything malformed.
    """
    p = Path(path)
    if not p.exists():
        raise ValueError(f"{p}: no such file; fix: check the path (IFEval/IFBench copies are in "
                         f"{repo_data_dir()})")
    suffix = p.suffix.lower()
    if suffix in _PARQUET_EXT:
        source, kind = _iter_parquet(p), "row"
    elif suffix in _JSON_EXT:
        source, kind = _iter_jsonl(p), ("line" if suffix != ".json" else "row")
    else:
        raise ValueError(f"{p}: unknown extension {p.suffix!r}; fix: use .jsonl, .json or .parquet")
    rows: list[dict] = []
    for row, raw in source:
        rows.append(normalize_row(raw, path=str(p), row=row, kind=kind))
        if limit is not None and len(rows) >= limit:
            break
    if not rows:
        raise ValueError(f"{p}: no rows; fix: the file is empty")
    if check_ids:
        _check_known_ids(rows, str(p))
    return rows


def _check_known_ids(rows: list[dict], path: str) -> None:
    from ifrl.constraints import known_ids  # type: ignore

    known = set(known_ids())
    for i, r in enumerate(rows):
        for j, iid in enumerate(r["instruction_id_list"]):
            if iid in MATH_IDS or _is_soft(iid) or iid in known:
                continue
            raise ValueError(f"{path}: row {i} (key {r['key']!r}): field 'instruction_id_list[{j}]': unknown id "
                             f"{iid!r}; fix: use one of the verifier's ids (ifrl verify --list) or a soft id")


def load_ifeval(path: str | Path | None = None, *, limit: int | None = None) -> list[dict]:
    """IFEval's 541 prompts (``data/ifeval/input_data.jsonl`` unless ``path`` is given)."""
    return load_rows(path or repo_data_dir() / "ifeval" / "input_data.jsonl", limit=limit)


def load_ifbench(path: str | Path | None = None, *, limit: int | None = None) -> list[dict]:
    """IFBench's test prompts (``data/ifbench/IFBench_test.jsonl`` unless ``path`` is given)."""
    return load_rows(path or repo_data_dir() / "ifbench" / "IFBench_test.jsonl", limit=limit)


def load_responses(path: str | Path) -> dict[str, str]:
    """Map prompt text -> response from an IFEval-style responses file (``prompt``, ``response``)."""
    p = Path(path)
    out: dict[str, str] = {}
    for row, raw in (_iter_parquet(p) if p.suffix.lower() in _PARQUET_EXT else _iter_jsonl(p)):
        where = _Where(str(p), row, "line" if p.suffix.lower() != ".parquet" else "row")
        if not isinstance(raw, dict):
            raise where.err("<row>", "expected a JSON object", "write one object per line")
        if "messages" in raw and "response" not in raw:
            prompt, _, response = _prompt_from_messages(raw["messages"], where)
        else:
            prompt, response = raw.get("prompt"), raw.get("response")
        if not isinstance(prompt, str):
            raise where.err("prompt", f"expected a string, got {type(prompt).__name__}",
                            "each row needs the prompt it answers")
        if not isinstance(response, str):
            raise where.err("response", f"expected a string, got {type(response).__name__}",
                            "each row needs the model's answer as text")
        out[prompt] = response
    return out


def write_rows(rows: list[dict], path: str | Path) -> Path:
    """Write rows as JSONL (``.jsonl``/``.json``) or Parquet (``.parquet``); returns the path.

    Parquet stores each kwargs dict as a JSON string (``kwargs`` is a list of strings):
    struct columns would pad every dict with every argument name and widen ints to floats
    across rows. ``load_rows`` reads both layouts.
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    suffix = p.suffix.lower()
    if suffix in _PARQUET_EXT:
        import pyarrow as pa
        import pyarrow.parquet as pq

        flat = []
        for r in rows:
            r2 = dict(r)
            r2["kwargs"] = [json.dumps(kw, sort_keys=True) for kw in r["kwargs"]]
            if "key" in r2:
                r2["key"] = str(r2["key"])
            if "parent" in r2 and r2["parent"] is not None:
                r2["parent"] = str(r2["parent"])
            flat.append(r2)
        pq.write_table(pa.Table.from_pylist(flat), p)
    elif suffix in _JSON_EXT:
        tmp = p.with_suffix(p.suffix + ".tmp")
        with tmp.open("w", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
        tmp.replace(p)
    else:
        raise ValueError(f"{p}: unknown extension {p.suffix!r}; fix: use .jsonl or .parquet")
    return p
