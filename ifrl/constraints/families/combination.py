"""combination:* — two answers, or repeating the request first."""

from ifrl.constraints.families._common import ascii_or_reference
from ifrl.constraints.registry import KwargSpec, constraint, fast


@constraint(
    "combination:two_responses",
    describe=lambda kw: "Give two different responses. Separate them with six asterisk symbols: ******.",
    conflicts={"*"},
    conflicts_except={"keywords:forbidden_words", "keywords:existence", "language:response_language",
                      "detectable_format:title", "punctuation:no_comma"},
)
def two_responses(text: str, kw: dict) -> bool:
    """Exactly two non-blank parts around ``******`` that differ after stripping; blank
    parts are allowed only at the very start or end."""
    parts = text.split("******")
    valid = []
    for i, part in enumerate(parts):
        if not part.strip():
            if i != 0 and i != len(parts) - 1:
                return False
        else:
            valid.append(part)
    return len(valid) == 2 and valid[0].strip() != valid[1].strip()


@fast("combination:two_responses")
def _two_batch(texts, kws):
    # without the separator there is one part: never two responses
    return ["******" in t and two_responses(t, kw) for t, kw in zip(texts, kws)]


@constraint(
    "combination:repeat_prompt",
    kwargs=(KwargSpec("prompt_to_repeat", "str", doc="the request text to repeat verbatim"),),
    prepare=lambda kw: {"prompt_to_repeat": kw["prompt_to_repeat"].strip().lower()},
    describe=lambda kw: "First repeat the request word for word without change, then give your answer "
    "(do not say anything before repeating the request; the request you need to repeat does not include "
    "this sentence).",
    conflicts={"*"},
    conflicts_except={"keywords:existence", "detectable_format:title", "punctuation:no_comma"},
)
def repeat_prompt(text: str, kw: dict) -> bool:
    """Response starts (case-insensitively, after stripping) with the request."""
    return text.strip().lower().startswith(kw["prompt_to_repeat"])


def _repeat_ascii(text: str, kw: dict) -> bool:
    # only the head needs lowering; a stripped prompt never ends in whitespace, so trailing
    # whitespace cannot match it
    p = kw["prompt_to_repeat"]
    return text.lstrip()[:len(p)].lower() == p


@fast("combination:repeat_prompt")
def _repeat_batch(texts, kws):
    return ascii_or_reference(texts, kws, _repeat_ascii, repeat_prompt)
