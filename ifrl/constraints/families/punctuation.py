"""punctuation:* — comma avoidance."""

from ifrl.constraints.registry import constraint, fast


@constraint(
    "punctuation:no_comma",
    describe=lambda kw: "Do not use any commas in your entire response.",
    conflicts={"punctuation:no_comma"},
)
def no_comma(text: str, kw: dict) -> bool:
    """No ASCII comma anywhere (IFEval: ``not re.search(r"\\,", text)``)."""
    return "," not in text


@fast("punctuation:no_comma")
def _no_comma_batch(texts, kws):
    return ["," not in t for t in texts]
