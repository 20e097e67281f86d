"""The demo end to end on a tiny random model (2 steps): data, before/after eval, train, export, report."""

from __future__ import annotations

import json

import pytest

from ifrl.demo import DEMO_IDS, LENGTH_ID, REPEAT_ID, DemoConfig, run_demo


@pytest.fixture(scope="module")
def quick_demo(tmp_path_factory, smollm2_tokenizer):  # the tiny models use the real SmolLM2 tokenizer
    run_dir = tmp_path_factory.mktemp("demo") / "run"
    summary = run_demo(DemoConfig(run_dir=str(run_dir), quick=True, threads=None))
    return run_dir, summary


def test_quick_demo_writes_report_checkpoint_and_export(quick_demo):
    run_dir, summary = quick_demo
    metrics = [json.loads(x) for x in (run_dir / "train" / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == [1, 2]
    assert summary["steps"] == 2 and summary["seed"] == 0
    assert summary["reward_first3"] == pytest.approx(sum(m["reward_mean"] for m in metrics) / 2)
    for name in ("report.md", "reward_curve.png", "per_id_heldout.png", "per_id_ifeval.png", "summary.json"):
        assert (run_dir / name).stat().st_size > 0, name
    assert (run_dir / "reward_curve.png").read_bytes()[:4] == b"\x89PNG"
    export = run_dir / "hf_export"
    assert (export / "config.json").exists() and list(export.glob("*.safetensors"))
    ckpt = summary["paths"]["checkpoint"]
    assert "checkpoints/step_2" in ckpt
    report = (run_dir / "report.md").read_text()
    for needle in ("Mean reward of the first 2 steps", "## Held-out prompts", "IFEval prompt-level loose accuracy",
                   "median_words", str(export), ckpt, "![reward curve](reward_curve.png)"):
        assert needle in report, needle
    for part in ("heldout", "ifeval"):
        for when in ("before", "after"):
            scores = json.loads((run_dir / "eval" / f"{when}_{part}" / "scores.json").read_text())
            assert scores["prompts"] == 4 and scores["temperature"] == 0.0
            assert scores["length"]["n"] == 4


def test_demo_data_keeps_heldout_and_ifeval_out_of_training(quick_demo):
    run_dir, summary = quick_demo
    from ifrl.data.loaders import load_rows

    train = load_rows(run_dir / "data" / "train.jsonl")
    held = load_rows(run_dir / "data" / "heldout.jsonl")
    ifeval = load_rows(run_dir / "data" / "ifeval_subset.jsonl")
    assert {r["task"] for r in train}.isdisjoint({r["task"] for r in held})
    assert {r["prompt"] for r in train}.isdisjoint({r["prompt"] for r in ifeval})
    allowed = set(DEMO_IDS) | {LENGTH_ID, REPEAT_ID}
    for r in train + held:
        assert {LENGTH_ID, REPEAT_ID} <= set(r["instruction_id_list"]) <= allowed
        kw = r["kwargs"][r["instruction_id_list"].index(LENGTH_ID)]
        assert kw["relation"] == "at least"
    for r in ifeval:
        assert set(r["instruction_id_list"]) <= set(DEMO_IDS) | {LENGTH_ID}
    assert [r["key"] for r in ifeval] == summary["ifeval"]["keys"]
