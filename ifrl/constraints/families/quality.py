"""quality:* — checks of the answer itself rather than of an IFEval instruction (not IFEval ids).

``quality:no_repetition``: no sentence or line is said twice. The response is cut at line
breaks and at ``.``, ``!`` and ``?``; each piece is reduced to its lower-cased ``\\w+`` words
(so markup such as ``*``, ``#`` or ``<<>>`` and spacing do not matter) and pieces of fewer than
two words are ignored (list numbers, "e.g."). The check fails as soon as one piece repeats.
It is the guard against the loops a small policy falls into when a format check rewards
"*highlighted*" or "P.S." lines: repeating one line many times satisfies those checks but not
this one.
"""

import re

from ifrl.constraints.registry import constraint

_BREAK = re.compile(r"[\n.!?]+")
_WORD = re.compile(r"\w+")


def repeated_piece(text: str) -> str | None:
    """The first sentence or line (as its lower-cased words) that appears a second time, or None."""
    seen = set()
    for piece in _BREAK.split(text):
        words = _WORD.findall(piece.lower())
        if len(words) < 2:
            continue
        key = " ".join(words)
        if key in seen:
            return key
        seen.add(key)
    return None


@constraint(
    "quality:no_repetition",
    describe=lambda kw: "Do not repeat any sentence or line.",
    ifeval=False,
)
def no_repetition(text: str, kw: dict) -> bool:
    """No sentence or line (compared by its lower-cased words, pieces of 2+ words) occurs twice."""
    return repeated_piece(text) is None
