"""A few rule checks used only while ``ifrl.constraints`` is not importable (strict mode)."""

from __future__ import annotations


def _check(iid: str, text: str, kw: dict) -> bool:
    if iid == "change_case:english_lowercase":
        return text.lower() == text
    if iid == "change_case:english_capital":
        return text.upper() == text
    if iid == "punctuation:no_comma":
        return "," not in text
    if iid == "startend:end_checker":
        return text.strip().lower().endswith(str(kw["end_phrase"]).strip().lower())
    if iid == "startend:quotation":
        t = text.strip()
        return len(t) > 1 and t[0] == '"' and t[-1] == '"'
    raise KeyError(f"unknown instruction id {iid!r}")


KNOWN = ("change_case:english_lowercase", "change_case:english_capital", "punctuation:no_comma",
         "startend:end_checker", "startend:quotation")


def verify_batch(responses, instruction_id_lists, kwargs_lists, mode="strict"):
    return [[_check(i, r, kw or {}) for i, kw in zip(ids, kws)]
            for r, ids, kws in zip(responses, instruction_id_lists, kwargs_lists)]
