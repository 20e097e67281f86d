"""startend:* — how the response ends or is wrapped."""

from ifrl.constraints.families._common import ascii_or_reference
from ifrl.constraints.registry import KwargSpec, constraint, fast

END_PHRASES = ("Any other questions?", "Is there anything else I can help with?", "Let me know if you have additional questions.")


def _prep_end(kw):
    return {"end_phrase": kw["end_phrase"].strip().lower()}


@constraint(
    "startend:end_checker",
    kwargs=(KwargSpec("end_phrase", "str", doc="exact phrase the response must end with"),),
    prepare=_prep_end,
    describe=lambda kw: f'Finish your response with this exact phrase: "{kw["end_phrase"].strip()}". '
    "No other words should follow it.",
    sample=lambda rng: {"end_phrase": rng.choice(END_PHRASES)},
    conflicts={"startend:end_checker"},
)
def end_checker(text: str, kw: dict) -> bool:
    """Ends with the phrase, ignoring surrounding whitespace, double quotes and case."""
    return text.strip().strip('"').lower().endswith(kw["end_phrase"])


def _end_ascii(text: str, kw: dict) -> bool:
    # only the tail needs lowering
    p = kw["end_phrase"]
    t = text.strip().strip('"')
    return len(t) >= len(p) and t[len(t) - len(p):].lower() == p


@fast("startend:end_checker")
def _end_batch(texts, kws):
    return ascii_or_reference(texts, kws, _end_ascii, end_checker)


@constraint(
    "startend:quotation",
    describe=lambda kw: "Wrap your entire response in double quotation marks.",
    conflicts={"startend:quotation", "detectable_format:title"},
)
def quotation(text: str, kw: dict) -> bool:
    """Stripped response is at least two characters, starting and ending with ``"``."""
    t = text.strip()
    return len(t) > 1 and t[0] == '"' and t[-1] == '"'
