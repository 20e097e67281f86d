"""Build multi-constraint instruction data from plain seed tasks.

For each full instruction: pick a seed task, draw K constraints (hard ids from the verifier's
registry with kwargs in sensible ranges, conflicting pairs excluded; optionally soft
constraints from a text pool), phrase each one in English, then expand the incremental
curriculum (level L_k = the first k constraints). Deterministic for a given config and seed.

Python: ``build_rows(BuildConfig(...)) -> list[dict]``; CLI: ``ifrl data build``.
"""

from __future__ import annotations

import difflib
import random
from collections import Counter
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path

from ifrl.data.constraint_specs import DEFAULT_IDS, SPECS, conflicts, describe, sample_kwargs
from ifrl.data.curriculum import expand_levels, schedule

__all__ = ["BuildConfig", "build_rows", "load_tasks", "load_soft_pool", "summarize", "format_summary"]

SOFT_ID = "soft"


@dataclass
class BuildConfig:
    """What ``build_rows`` makes. Every field has a CLI flag of the same name."""

    tasks: str | None = None
    """Seed tasks file, one plain instruction per line ('#' comments allowed); None = the packaged
    ifrl/data/seed_tasks.txt (300 tasks)."""
    num_instructions: int = 200
    """Number of full (level-K) instructions; each yields K curriculum rows."""
    min_constraints: int = 1
    """Fewest constraints per full instruction."""
    max_constraints: int = 5
    """Most constraints per full instruction (fewer when the allowed ids run out because of conflicts)."""
    ids: list[str] | None = None
    """Hard ids to draw from; None = every registry id except detectable_format:constrained_response."""
    exclude_ids: list[str] = field(default_factory=list)
    """Hard ids never to draw."""
    require_ids: list[str] = field(default_factory=list)
    """Hard ids every instruction contains (e.g. a length requirement against degenerate answers)."""
    require_position: str = "last"
    """Where required ids go: 'first' (present from level 1 on) or 'last' (only in the top level)."""
    fixed_kwargs: dict[str, dict] = field(default_factory=dict)
    """Per-id kwargs that replace the sampled ones, e.g. {"length_constraints:number_words":
    {"relation": "at least"}} (the rest is still sampled)."""
    soft_prob: float = 0.0
    """Probability that a drawn constraint is soft (free text scored by the reward model)."""
    soft_pool: str | None = None
    """Soft constraints file, 'category<TAB>text' per line; None = ifrl/data/soft_constraints.txt."""
    response_words: int = 200
    """Answer length the constraints should fit; word/sentence/letter counts scale with it."""
    levels: str = "all"
    """'all': rows for levels 1..K (the curriculum); 'top': only the full instruction."""
    include_base: bool = False
    """Also emit level 0 (the bare task), the negative example for a first soft constraint."""
    order: str = "mixed"
    """Row order: 'mixed' (shuffled), 'staged' (L1 first, then L2, ...), 'none' (generation order)."""
    seed: int = 0
    """Random seed; the same config and seed give the same rows."""
    key_prefix: str = "if"
    """Parent keys are <key_prefix><index>; level rows add -L<k>."""

    def validate(self) -> None:
        if self.num_instructions < 1:
            raise ValueError(f"num_instructions={self.num_instructions}; fix: use a positive count")
        if not 1 <= self.min_constraints <= self.max_constraints:
            raise ValueError(f"min_constraints={self.min_constraints}, max_constraints={self.max_constraints}; "
                             "fix: need 1 <= min_constraints <= max_constraints")
        if not 0.0 <= self.soft_prob <= 1.0:
            raise ValueError(f"soft_prob={self.soft_prob}; fix: a probability in [0, 1]")
        if self.response_words < 5:
            raise ValueError(f"response_words={self.response_words}; fix: at least 5")
        if self.levels not in ("all", "top"):
            raise ValueError(f"levels={self.levels!r}; fix: 'all' or 'top'")
        if self.order not in ("mixed", "staged", "none"):
            raise ValueError(f"order={self.order!r}; fix: 'mixed', 'staged' or 'none'")
        if self.require_position not in ("first", "last"):
            raise ValueError(f"require_position={self.require_position!r}; fix: 'first' or 'last'")
        for name in ("ids", "exclude_ids", "require_ids", "fixed_kwargs"):
            for iid in getattr(self, name) or []:
                if iid not in SPECS:
                    close = difflib.get_close_matches(iid, list(SPECS), n=3)
                    raise ValueError(f"{name}: unknown hard id {iid!r}; fix: use a verifier id"
                                     + (f" (did you mean {', '.join(close)}?)" if close else
                                        f" ({', '.join(sorted(SPECS))})"))
        req = self.require_ids
        for i, a in enumerate(req):
            for b in req[i + 1:]:
                if conflicts(a, b):
                    raise ValueError(f"require_ids: {a!r} and {b!r} conflict; fix: require only one of them")
        if len(req) > self.max_constraints:
            raise ValueError(f"require_ids has {len(req)} ids but max_constraints={self.max_constraints}; "
                             "fix: raise max_constraints")
        if not self.allowed_ids() and self.soft_prob < 1.0 and self.max_constraints > len(req):
            raise ValueError("no hard ids left to draw from after ids/exclude_ids; fix: allow more ids")

    def allowed_ids(self) -> list[str]:
        ids = list(self.ids) if self.ids else list(DEFAULT_IDS)
        return [i for i in ids if i not in set(self.exclude_ids) and i not in set(self.require_ids)]


def _read_lines(path: str | Path | None, package_file: str) -> tuple[list[str], str]:
    if path is None:
        text = resources.files("ifrl.data").joinpath(package_file).read_text(encoding="utf-8")
        name = f"ifrl/data/{package_file}"
    else:
        p = Path(path)
        if not p.exists():
            raise ValueError(f"{p}: no such file; fix: give a text file with one entry per line")
        text, name = p.read_text(encoding="utf-8"), str(p)
    return text.splitlines(), name


def load_tasks(path: str | Path | None = None) -> list[str]:
    """Seed tasks, one per line; blank lines and '#' comments are skipped."""
    lines, name = _read_lines(path, "seed_tasks.txt")
    tasks = [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
    if not tasks:
        raise ValueError(f"{name}: no tasks; fix: one plain instruction per line")
    return tasks


def load_soft_pool(path: str | Path | None = None) -> list[tuple[str, str]]:
    """Soft constraints as (category, text); lines are 'category<TAB>text' or just 'text'."""
    lines, name = _read_lines(path, "soft_constraints.txt")
    pool = []
    for lineno, ln in enumerate(lines, start=1):
        if not ln.strip() or ln.lstrip().startswith("#"):
            continue
        cat, _, text = ln.partition("\t") if "\t" in ln else ("soft", "", ln)
        if not text.strip():
            raise ValueError(f"{name}: line {lineno}: empty constraint text; fix: 'category<TAB>text'")
        pool.append((cat.strip(), text.strip()))
    if not pool:
        raise ValueError(f"{name}: no soft constraints; fix: one per line")
    return pool


def _draw_constraints(cfg: BuildConfig, rng: random.Random, task: str, allowed: list[str],
                      soft_pool: list[tuple[str, str]]) -> tuple[list[str], list[dict], list[str]]:
    k = rng.randint(cfg.min_constraints, cfg.max_constraints)
    chosen: list[str] = list(cfg.require_ids)
    slots = k - len(chosen)
    drawn: list[str] = []
    soft_texts: dict[int, str] = {}
    used_soft: set[str] = set()
    for _ in range(max(slots, 0)):
        if soft_pool and rng.random() < cfg.soft_prob:
            candidates = [t for _, t in soft_pool if t not in used_soft]
            if candidates:
                text = rng.choice(candidates)
                used_soft.add(text)
                soft_texts[len(drawn)] = text
                drawn.append(SOFT_ID)
                continue
        candidates = [i for i in allowed if not any(conflicts(i, c) for c in chosen + drawn if c != SOFT_ID)]
        if not candidates:
            break
        drawn.append(rng.choice(candidates))
    order = (chosen + drawn) if cfg.require_position == "first" else (drawn + chosen)
    offset = len(chosen) if cfg.require_position == "first" else 0
    ids, kwargs, texts = [], [], []
    for pos, iid in enumerate(order):
        if iid == SOFT_ID:
            ids.append(SOFT_ID)
            kwargs.append({})
            texts.append(soft_texts[pos - offset])
            continue
        kw = sample_kwargs(iid, rng, task, cfg.response_words)
        if iid in cfg.fixed_kwargs:
            kw = _apply_fixed(kw, cfg.fixed_kwargs[iid], iid, rng, cfg.response_words)
        ids.append(iid)
        kwargs.append(kw)
        texts.append(describe(iid, kw, rng))
    return ids, kwargs, texts


def _apply_fixed(kw: dict, fixed: dict, iid: str, rng: random.Random, response_words: int) -> dict:
    out = {**kw, **fixed}
    # A fixed relation changes what a sensible count is; redraw the count for that relation.
    if iid == "length_constraints:number_words" and "relation" in fixed and "num_words" not in fixed:
        lo, hi = (0.2, 0.6) if out["relation"] == "at least" else (0.8, 1.5)
        out["num_words"] = max(5 if out["relation"] == "at least" else 10, int(round(rng.uniform(lo, hi) * response_words)))
    return out


def build_rows(cfg: BuildConfig, tasks: list[str] | None = None) -> list[dict]:
    """Rows in the shared row format (plus ``task``, the bare instruction), per the config."""
    cfg.validate()
    tasks = tasks if tasks is not None else load_tasks(cfg.tasks)
    soft_pool = load_soft_pool(cfg.soft_pool) if cfg.soft_prob > 0 else []
    allowed = cfg.allowed_ids()
    rng = random.Random(cfg.seed)
    order = list(range(len(tasks)))
    rows: list[dict] = []
    width = max(4, len(str(cfg.num_instructions - 1)))
    for n in range(cfg.num_instructions):
        if n % len(tasks) == 0:  # every task once per pass, in a fresh order each pass
            rng.shuffle(order)
        task = tasks[order[n % len(tasks)]]
        ids, kwargs, texts = _draw_constraints(cfg, rng, task, allowed, soft_pool)
        full = {"key": f"{cfg.key_prefix}{n:0{width}d}", "instruction_id_list": ids, "kwargs": kwargs,
                "constraints": texts, "task": task}
        rows.extend(expand_levels(full, levels=cfg.levels, include_base=cfg.include_base))
    return schedule(rows, order=cfg.order, seed=cfg.seed)


def summarize(rows: list[dict]) -> dict:
    """Counts per level and per id (the numbers ``ifrl data build`` prints)."""
    per_level = Counter(f"L{int(r['level'])}" for r in rows)
    per_id = Counter(i for r in rows for i in r["instruction_id_list"])
    parents = {r.get("parent") if r.get("parent") is not None else r["key"] for r in rows}
    return {"rows": len(rows), "instructions": len(parents), "per_level": dict(sorted(per_level.items(), key=lambda kv: int(kv[0][1:]))),
            "per_id": dict(per_id.most_common())}


def format_summary(summary: dict) -> str:
    lines = [f"{summary['rows']} rows from {summary['instructions']} instructions"]
    lines.append("per level: " + ", ".join(f"{k}={v}" for k, v in summary["per_level"].items()))
    lines.append("per id:")
    width = max((len(i) for i in summary["per_id"]), default=10)
    for iid, count in summary["per_id"].items():
        lines.append(f"  {iid:<{width}}  {count}")
    return "\n".join(lines)


def config_dict(cfg: BuildConfig) -> dict:
    return asdict(cfg)
