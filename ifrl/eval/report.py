"""Markdown reports and bar charts for evaluation results; several results side by side.

Input is the metrics dict of ``EvalResult.metrics()`` (also ``scores.json``). With two or
more results (e.g. before and after training) every table gets one column per result, and
the chart one bar per result for each constraint id.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["summary_lines", "markdown_report", "plot_per_id", "write_report"]


def _pct(x) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _num(x) -> str:
    return "n/a" if x is None else (f"{x:.4f}" if isinstance(x, float) else str(x))


def summary_lines(m: dict) -> list[str]:
    """The console summary: accuracies, then the per-id table."""
    lines = [f"{m['name']}: {m['prompts']} prompts"]
    for mode in ("strict", "loose"):
        lines.append(f"  {mode:<6} prompt-level {_num(m[f'prompt_{mode}'])} ({m[f'prompts_scored_{mode}']} prompts)"
                     f"   instruction-level {_num(m[f'instruction_{mode}'])}"
                     f" ({m[f'instructions_scored_{mode}']} instructions)")
    if m.get("unchecked"):
        total = sum(m["unchecked"].values())
        lines.append(f"  not checkable by the verifier (left out): {total} instructions, "
                     f"{len(m['unchecked'])} ids: " + ", ".join(list(m["unchecked"])[:8])
                     + (" ..." if len(m["unchecked"]) > 8 else ""))
    ln = m.get("length") or {}
    if ln.get("n"):
        lines.append(f"  response words: median {ln['median_words']:g}, mean {ln['mean_words']:g}, "
                     f"<=3 words {_pct(ln['frac_le_3_words'])}"
                     + (f", repeating a sentence/line {_pct(ln['frac_repeating'])}" if "frac_repeating" in ln else ""))
    if m.get("per_id"):
        width = max(len(k) for k in m["per_id"])
        lines.append(f"  {'instruction id':<{width}}  {'n':>4}  {'strict':>7}  {'loose':>7}")
        for iid, d in m["per_id"].items():
            lines.append(f"  {iid:<{width}}  {d['n']:>4}  {_pct(d['strict']):>7}  {_pct(d['loose']):>7}")
    return lines


def markdown_report(results: list[dict], *, title: str = "Evaluation", chart: str | None = None,
                    notes: list[str] | None = None) -> str:
    names = [r["name"] for r in results]
    out = [f"# {title}", ""]
    for n in notes or []:
        out.append(n)
    if notes:
        out.append("")
    out += ["## Accuracy", "", "| metric | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for key, label in [("prompt_strict", "prompt-level strict"), ("instruction_strict", "instruction-level strict"),
                       ("prompt_loose", "prompt-level loose"), ("instruction_loose", "instruction-level loose")]:
        out.append(f"| {label} | " + " | ".join(_num(r.get(key)) for r in results) + " |")
    out.append("| prompts | " + " | ".join(str(r["prompts"]) for r in results) + " |")
    out += ["", "## Response length (words)", "", "| statistic | " + " | ".join(names) + " |",
            "|---|" + "---:|" * len(names)]
    for key in ("median_words", "mean_words", "p10_words", "p90_words", "frac_le_3_words", "frac_empty",
                "frac_repeating"):
        vals = []
        for r in results:
            v = (r.get("length") or {}).get(key)
            vals.append(_pct(v) if key.startswith("frac") and v is not None else
                        ("n/a" if v is None else f"{v:g}"))
        out.append(f"| {key} | " + " | ".join(vals) + " |")
    ids = sorted({i for r in results for i in r.get("per_id", {})})
    if ids:
        out += ["", "## Per instruction id (pass rate, loose / strict)", ""]
        if chart:
            out += [f"![per-id pass rate]({chart})", ""]
        out.append("| id | n | " + " | ".join(names) + " |")
        out.append("|---|---:|" + "---:|" * len(names))
        for iid in ids:
            n = next((r["per_id"][iid]["n"] for r in results if iid in r.get("per_id", {})), 0)
            cells = []
            for r in results:
                d = r.get("per_id", {}).get(iid)
                cells.append("-" if d is None else f"{_pct(d['loose'])} / {_pct(d['strict'])}")
            out.append(f"| `{iid}` | {n} | " + " | ".join(cells) + " |")
    unchecked = {k: v for r in results for k, v in (r.get("unchecked") or {}).items()}
    if unchecked:
        out += ["", f"Not checkable by the verifier and left out: {sum(unchecked.values())} instructions "
                f"({', '.join(sorted(unchecked))})."]
    return "\n".join(out) + "\n"


def plot_per_id(results: list[dict], path: str | Path, *, mode: str = "loose", title: str | None = None) -> Path:
    """Horizontal grouped bars: pass rate per constraint id, one bar per result."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ids = sorted({i for r in results for i in r.get("per_id", {})})
    fig_h = max(2.5, 0.32 * len(ids) * max(1, len(results)) ** 0.5 + 1.2)
    fig, ax = plt.subplots(figsize=(8, fig_h))
    k = len(results)
    height = 0.8 / max(k, 1)
    for j, r in enumerate(results):
        vals = [100 * r.get("per_id", {}).get(i, {}).get(mode, 0.0) for i in ids]
        ax.barh([y + (j - (k - 1) / 2) * height for y in range(len(ids))], vals, height=height, label=r["name"])
    ax.set_yticks(range(len(ids)))
    ax.set_yticklabels(ids, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel(f"pass rate, {mode} (%)")
    ax.set_title(title or f"Per-constraint pass rate ({mode})", fontsize=10)
    if k > 1:
        ax.legend(fontsize=8, loc="lower right")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p, dpi=110)
    plt.close(fig)
    return p


def write_report(results: list[dict], out_dir: str | Path, *, title: str = "Evaluation",
                 stem: str = "report", notes: list[str] | None = None) -> Path:
    """``<stem>.md`` plus ``<stem>_per_id.png`` in ``out_dir``; returns the markdown path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    chart = None
    if any(r.get("per_id") for r in results):
        chart = plot_per_id(results, out / f"{stem}_per_id.png").name
    md = out / f"{stem}.md"
    md.write_text(markdown_report(results, title=title, chart=chart, notes=notes), encoding="utf-8")
    return md
