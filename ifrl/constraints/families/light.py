"""light / light_choice — final-answer checks for math and multiple-choice rows.

``light``: the content of the *last* ``\\boxed{...}`` (braces balanced) equals the
answer once runs of whitespace are collapsed and the ends stripped.
``light_choice``: the last boxed content, reduced to its choice letter (``B``,
``(B)``, ``B.``, ``\\text{B}``, ``B) text``), equals the answer letter (case-insensitive).
A response without a complete ``\\boxed{...}`` fails.
"""

import re

from ifrl.constraints.registry import KwargSpec, constraint

_BOXED = "\\boxed{"
_TEXT_WRAP = re.compile(r"^\\(?:text|textbf|mathrm)\{(.*)\}$", re.DOTALL)
_LETTER = re.compile(r"^\(?([A-Za-z])(?:\)|\.|:|\s|$)")


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` with balanced braces, or None."""
    start = text.rfind(_BOXED)
    while start != -1:
        i = start + len(_BOXED)
        depth = 1
        j = i
        while j < len(text):
            c = text[j]
            if c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
                if depth == 0:
                    return text[i:j]
            j += 1
        start = text.rfind(_BOXED, 0, start)  # unterminated: try the previous one
    return None


def _norm(s: str) -> str:
    return " ".join(str(s).split())


def choice_letter(s: str) -> str | None:
    s = s.strip()
    m = _TEXT_WRAP.match(s)
    if m:
        s = m.group(1).strip()
    m = _LETTER.match(s)
    return m.group(1).upper() if m else None


@constraint(
    "light",
    kwargs=(KwargSpec("answer", "str", doc="reference final answer"),),
    describe=lambda kw: "Put your final answer within \\boxed{}.",
    ifeval=False,
)
def light(text: str, kw: dict) -> bool:
    """Last ``\\boxed{}`` content equals the answer after whitespace normalisation."""
    box = last_boxed(text)
    return box is not None and _norm(box) == _norm(kw["answer"])


def _prep_choice(kw):
    letter = choice_letter(kw["answer"])
    if letter is None:
        raise ValueError(f"kwargs.answer={kw['answer']!r} for 'light_choice' must be a choice letter such as 'B'")
    return {"answer": letter}


@constraint(
    "light_choice",
    kwargs=(KwargSpec("answer", "str", doc="correct choice letter, e.g. 'B'"),),
    prepare=_prep_choice,
    describe=lambda kw: "Put the letter of your final choice within \\boxed{}.",
    ifeval=False,
)
def light_choice(text: str, kw: dict) -> bool:
    """The letter in the last ``\\boxed{}`` equals the answer letter."""
    box = last_boxed(text)
    return box is not None and choice_letter(box) == kw["answer"]
