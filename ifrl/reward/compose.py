"""Compose the RL reward of a response from its row's constraints.

R = scale * mean_k r_k over the row's instruction ids, with r_k = 1[check passes] from
``ifrl.constraints.verify_batch``: IFEval rule checks for hard ids, answer matching for ``light``
(last ``\\boxed{}`` equals the answer) and ``light_choice`` (boxed letter). Soft ids need the
reward model; until it exists a run with soft ids fails at start (``check_rows``).

With ``reasoning_delimiter`` set (the seed's reasoning models: ``"</think>\\n\\n"``) only the text
after the last delimiter is scored, and a response without one scores 0.

A reward that raises for one sample is logged and that sample is excluded (reward ``None``);
the run goes on.
"""

from __future__ import annotations

import logging

from ifrl.config import RewardConfig

log = logging.getLogger("ifrl.reward")

def _is_soft(iid: str) -> bool:
    from ifrl.constraints import is_soft

    return bool(is_soft(iid))


def check_rows(rows: list[dict], source: str = "data") -> None:
    """Fail fast on rows the reward cannot score: no ids, soft ids (no reward model yet), unknown
    ids or kwargs that do not fit their id. Errors name file, row, field and the fix."""
    from ifrl.constraints import validate_kwargs

    for i, row in enumerate(rows):
        where = f"{source}: row {i} (key {row.get('key')!r})"
        if not row["instruction_id_list"]:
            raise ValueError(f"{where}: field 'instruction_id_list' is empty; an RL row needs at least one "
                             "constraint to score. Fix: add instruction ids or drop the row.")
        for j, iid in enumerate(row["instruction_id_list"]):
            if _is_soft(iid):
                raise ValueError(
                    f"{where}: field 'instruction_id_list[{j}]': soft constraint id {iid!r} needs the "
                    "soft-constraint reward model, which this trainer cannot load yet. Fix: keep only "
                    "rule-checkable ids (ifrl verify --list) in the training data for now.")
            validate_kwargs(iid, row["kwargs"][j], where=f"{where}: field 'kwargs[{j}]'")


def extract_answer(text: str, delimiter: str | None) -> str | None:
    if not delimiter:
        return text
    k = text.rfind(delimiter)
    return None if k < 0 else text[k + len(delimiter):]


def _verify(texts: list[str], ids: list[list[str]], kwargs: list[list[dict]], mode: str) -> list[list[bool]]:
    from ifrl.constraints import verify_batch

    return verify_batch(texts, ids, kwargs, mode=mode)


class RewardFn:
    """Callable ``(responses, rows) -> list[float | None]`` (None = failed, excluded)."""

    def __init__(self, cfg: RewardConfig):
        self.cfg = cfg
        self.failures = 0

    def __call__(self, responses: list[str], rows: list[dict]) -> list[float | None]:
        scores: list[float | None] = [None] * len(responses)
        texts = [extract_answer(r, self.cfg.reasoning_delimiter) for r in responses]
        rule_idx = []
        for i, (text, row) in enumerate(zip(texts, rows)):
            if text is None:
                scores[i] = 0.0  # the reasoning block never closed
            else:
                rule_idx.append(i)
        if rule_idx:
            args = ([texts[i] for i in rule_idx], [rows[i]["instruction_id_list"] for i in rule_idx],
                    [rows[i]["kwargs"] for i in rule_idx])
            try:
                follows = _verify(*args, self.cfg.mode)
                for i, f in zip(rule_idx, follows):
                    scores[i] = sum(map(float, f)) / len(f)
            except Exception:  # one bad sample must not sink the batch: retry one by one
                for i in rule_idx:
                    scores[i] = self._safe(
                        lambda i=i: (lambda f: sum(map(float, f)) / len(f))(
                            _verify([texts[i]], [rows[i]["instruction_id_list"]], [rows[i]["kwargs"]], self.cfg.mode)[0]), i)
        return [None if s is None else self.cfg.scale * s for s in scores]

    def _safe(self, fn, i: int):
        try:
            return float(fn())
        except Exception as e:  # noqa: BLE001 - contained by design (R7)
            self.failures += 1
            log.warning("reward failed for sample %d (%s: %s); sample excluded from the step", i, type(e).__name__, e)
            return None
