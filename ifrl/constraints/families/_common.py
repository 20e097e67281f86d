"""Helpers shared by the family modules; registers no constraint itself."""

from __future__ import annotations

from ifrl.constraints.registry import RELATIONS, KwargSpec


def relation_kwarg(name: str = "relation") -> KwargSpec:
    return KwargSpec(name, "choice", choices=RELATIONS, doc='"less than" (<) or "at least" (>=)')


def compare(count: int, relation: str, n: int) -> bool:
    """IFEval's comparison: "less than" is ``<``; anything else is "at least" (``>=``)."""
    return count < n if relation == "less than" else count >= n


def ascii_or_reference(texts, kws, fast, check) -> list[bool]:
    """A batch fast path that holds for ASCII text only: ``fast(t, kw)`` on ASCII texts
    (which lower-case character for character), the reference ``check(t, kw)`` on the
    others."""
    return [fast(t, kw) if t.isascii() else check(t, kw) for t, kw in zip(texts, kws)]


def relation_words(relation: str) -> str:
    return "fewer than" if relation == "less than" else "at least"


# A small neutral vocabulary for sampling keyword kwargs when building datasets.
WORDS = (
    "river", "garden", "window", "market", "signal", "planet", "letter", "bridge", "forest",
    "engine", "harbor", "pencil", "winter", "silver", "ticket", "castle", "orange", "rocket",
    "island", "camera", "doctor", "kitchen", "library", "mountain", "network", "ocean",
    "pattern", "quarter", "reason", "season", "theory", "valley", "weather", "balance",
    "century", "desert", "energy", "festival", "history", "journey", "lantern", "memory",
    "morning", "nature", "picture", "promise", "science", "shadow", "student", "thunder",
)
