"""detectable_content:* — placeholders and postscripts."""

import re

from ifrl.constraints.registry import KwargSpec, constraint, fast

_PLACEHOLDER = re.compile(r"\[.*?\]")


@constraint(
    "detectable_content:number_placeholders",
    kwargs=(KwargSpec("num_placeholders", "int", lo=1, sample_lo=1, sample_hi=4),),
    describe=lambda kw: f"The response must contain at least {kw['num_placeholders']} placeholders "
    "written in square brackets, such as [address].",
    conflicts={"detectable_content:number_placeholders"},
)
def number_placeholders(text: str, kw: dict) -> bool:
    """At least N non-overlapping ``[...]`` spans (no newline inside)."""
    return len(_PLACEHOLDER.findall(text)) >= kw["num_placeholders"]


def count_placeholders(t: str, need: int) -> int:
    r"""``len(re.findall(r"\[.*?\]", t))``, stopping once it reaches ``need``: each ``[``
    closes at the next ``]`` unless a line break comes first (then the search goes on at
    the next ``[``); after a match it resumes behind the ``]``."""
    n = 0
    s = t.find("[")
    while s >= 0:
        k = t.find("]", s + 1)
        if k < 0:
            break
        if t.find("\n", s + 1, k) < 0:
            n += 1
            if n >= need:
                return n
            s = t.find("[", k + 1)
        else:
            s = t.find("[", s + 1)
    return n


@fast("detectable_content:number_placeholders")
def _placeholders_batch(texts, kws):
    return [count_placeholders(t, kw["num_placeholders"]) >= kw["num_placeholders"] for t, kw in zip(texts, kws)]


def _ps_pattern(marker: str) -> re.Pattern:
    # IFEval matches r"\s*<marker>.*$" line-wise on the lower-cased text; a match exists
    # iff the marker itself occurs, because \s* and .*$ can always match empty / to EOL.
    if marker == "P.P.S":
        core = r"p\.\s?p\.\s?s"
    elif marker == "P.S.":
        core = r"p\.\s?s\."
    else:
        core = marker.lower()
    return re.compile(core, re.MULTILINE)


@constraint(
    "detectable_content:postscript",
    kwargs=(KwargSpec("postscript_marker", "str", doc='e.g. "P.S." or "P.P.S"'),),
    prepare=lambda kw: {"postscript_marker": kw["postscript_marker"].strip()},
    describe=lambda kw: f"At the end of your response, please explicitly add a postscript starting with "
    f"{kw['postscript_marker'].strip()}",
    sample=lambda rng: {"postscript_marker": rng.choice(("P.S.", "P.P.S"))},
    conflicts={"detectable_content:postscript"},
)
def postscript(text: str, kw: dict) -> bool:
    """The lower-cased response contains the postscript marker (``P.S.``/``P.P.S`` allow
    optional single spaces between their letters)."""
    marker = kw["postscript_marker"]
    if marker == "P.P.S":
        pat = r"\s*p\.\s?p\.\s?s.*$"
    elif marker == "P.S.":
        pat = r"\s*p\.\s?s\..*$"
    else:
        pat = r"\s*" + marker.lower() + r".*$"
    return bool(re.findall(pat, text.lower(), flags=re.MULTILINE))


@fast("detectable_content:postscript")
def _postscript_batch(texts, kws):
    out = []
    for t, kw in zip(texts, kws):
        out.append(_ps_pattern(kw["postscript_marker"]).search(t.lower()) is not None)
    return out
