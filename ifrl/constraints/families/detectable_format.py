"""detectable_format:* — bullets, highlights, sections, JSON, titles, fixed answers."""

import json
import re
from functools import lru_cache


from ifrl.constraints.registry import KwargSpec, constraint, fast

ANSWERS = ("My answer is yes.", "My answer is no.", "My answer is maybe.")
_STAR_BULLET = re.compile(r"^\s*\*[^\*].*$", re.MULTILINE)
_DASH_BULLET = re.compile(r"^\s*-.*$", re.MULTILINE)
_HIGHLIGHT = re.compile(r"\*[^\n\*]*\*")
_DOUBLE_HIGHLIGHT = re.compile(r"\*\*[^\n\*]*\*\*")
_TITLE = re.compile(r"<<[^\n]+>>")


@constraint(
    "detectable_format:number_bullet_lists",
    kwargs=(KwargSpec("num_bullets", "int", lo=1, sample_lo=1, sample_hi=5),),
    describe=lambda kw: f"Your answer must contain exactly {kw['num_bullets']} bullet points. "
    "Use markdown bullet points such as:\n* This is point 1.\n* This is point 2",
    conflicts={"detectable_format:number_bullet_lists"},
)
def number_bullet_lists(text: str, kw: dict) -> bool:
    """Exactly N lines that start (after whitespace) with ``*`` + non-``*``, or with ``-``."""
    return len(_STAR_BULLET.findall(text)) + len(_DASH_BULLET.findall(text)) == kw["num_bullets"]


@fast("detectable_format:number_bullet_lists")
def _bullets_batch(texts, kws):
    from ifrl.constraints.engine_kernels import count_bullets

    counts = count_bullets(texts)
    return [int(c) == kw["num_bullets"] for c, kw in zip(counts, kws)]


@constraint(
    "detectable_format:constrained_response",
    describe=lambda kw: "Answer with one of the following options: (\"My answer is yes.\", "
    "\"My answer is no.\", \"My answer is maybe.\")",
    conflicts={"*"},
)
def constrained_response(text: str, kw: dict) -> bool:
    """One of the three fixed answers appears in the response."""
    t = text.strip()
    return any(a in t for a in ANSWERS)


@constraint(
    "detectable_format:number_highlighted_sections",
    kwargs=(KwargSpec("num_highlights", "int", lo=1, sample_lo=1, sample_hi=4),),
    describe=lambda kw: f"Highlight at least {kw['num_highlights']} sections in your answer with markdown, "
    "i.e. *highlighted section*.",
    conflicts={"detectable_format:number_highlighted_sections"},
)
def number_highlighted_sections(text: str, kw: dict) -> bool:
    """At least N ``*x*`` / ``**x**`` spans on one line with non-blank content."""
    return highlight_count(text) >= kw["num_highlights"]


def highlight_count(text: str) -> int:
    """The spans ``number_highlighted_sections`` counts, by IFEval's two regexes."""
    n = 0
    for h in _HIGHLIGHT.findall(text):
        if h.strip("*").strip():
            n += 1
    for h in _DOUBLE_HIGHLIGHT.findall(text):
        if h.removeprefix("**").removesuffix("**").strip():
            n += 1
    return n


@fast("detectable_format:number_highlighted_sections")
def _highlights_batch(texts, kws):
    from ifrl.constraints.engine_kernels import count_highlights_batch

    need = [kw["num_highlights"] for kw in kws]
    return (count_highlights_batch(texts, need) >= need).tolist()


def _section_re(splitter: str) -> re.Pattern:
    return re.compile(r"\s?" + splitter + r"\s?\d+\s?")


@constraint(
    "detectable_format:multiple_sections",
    kwargs=(
        KwargSpec("section_spliter", "str", doc='word that starts each section, e.g. "Section"'),
        KwargSpec("num_sections", "int", lo=1, sample_lo=2, sample_hi=5),
    ),
    prepare=lambda kw: {"section_spliter": kw["section_spliter"].strip(), "num_sections": kw["num_sections"]},
    describe=lambda kw: f"Your response must have {kw['num_sections']} sections. Mark the beginning of each "
    f"section with {kw['section_spliter'].strip()} X, such as: {kw['section_spliter'].strip()} 1",
    sample=lambda rng: {"section_spliter": rng.choice(("Section", "SECTION", "PARAGRAPH", "Part")),
                        "num_sections": rng.randint(2, 5)},
    conflicts={"detectable_format:multiple_sections", "language:response_language",
               "detectable_format:number_highlighted_sections"},
)
def multiple_sections(text: str, kw: dict) -> bool:
    """At least N occurrences of ``<splitter> <number>`` (splitting yields N+1 parts)."""
    return len(re.split(_section_re(kw["section_spliter"]), text)) - 1 >= kw["num_sections"]


def count_sections(text: str, splitter: str) -> int:
    r"""Number of ``\s?<splitter>\s?\d+\s?`` matches for a literal, stripped splitter,
    found by substring search (a match may take one whitespace character before the
    splitter unless the previous match took it)."""
    n = len(text)
    count = pos = 0
    q = text.find(splitter, 0)
    while q >= 0:
        e = q + len(splitter)
        if e < n and text[e].isspace():
            e += 1
        d = e
        while d < n and text[d].isdecimal():
            d += 1
        if d > e:
            count += 1
            if d < n and text[d].isspace():
                d += 1
            pos = d
            q = text.find(splitter, pos)
        else:
            q = text.find(splitter, q + 1)
    return count


@lru_cache(maxsize=1 << 12)
def _plain_splitter(sp: str) -> bool:
    """The splitter is a regex literal with no whitespace at either end (``count_sections``
    applies)."""
    return bool(sp) and re.escape(sp) == sp and not sp[0].isspace() and not sp[-1].isspace()


@fast("detectable_format:multiple_sections")
def _sections_batch(texts, kws):
    out = []
    for t, kw in zip(texts, kws):
        sp = kw["section_spliter"]
        if _plain_splitter(sp):
            out.append(count_sections(t, sp) >= kw["num_sections"])
        else:
            out.append(multiple_sections(t, kw))
    return out


@constraint(
    "detectable_format:json_format",
    describe=lambda kw: "Entire output should be wrapped in JSON format. You can use markdown ticks such as ```.",
    conflicts={"*"},
    conflicts_except={"keywords:forbidden_words", "keywords:existence"},
)
def json_format(text: str, kw: dict) -> bool:
    """The stripped response, minus an optional ```json fence, parses as JSON."""
    t = (
        text.strip().removeprefix("```json").removeprefix("```Json").removeprefix("```JSON")
        .removeprefix("```").removesuffix("```").strip()
    )
    try:
        json.loads(t)
    except ValueError:
        return False
    return True


# json.loads skips JSON whitespace, then a value must start with one of these
# (string, object, array, null/true/false, NaN, Infinity, a number or -Infinity)
_JSON_STARTS = frozenset('"{[ntfNI-0123456789')


@fast("detectable_format:json_format")
def _json_batch(texts, kws):
    out = []
    for text in texts:
        t = (
            text.strip().removeprefix("```json").removeprefix("```Json").removeprefix("```JSON")
            .removeprefix("```").removesuffix("```").strip()
        )
        if t == "" or t[0] not in _JSON_STARTS:
            out.append(False)
            continue
        try:
            json.loads(t)
        except ValueError:
            out.append(False)
        else:
            out.append(True)
    return out


@constraint(
    "detectable_format:title",
    describe=lambda kw: "Your answer must contain a title, wrapped in double angular brackets, such as <<poem of joy>>.",
    conflicts={"detectable_format:title"},
)
def title(text: str, kw: dict) -> bool:
    """Some ``<<...>>`` on one line has non-blank content."""
    return any(t.lstrip("<").rstrip(">").strip() for t in _TITLE.findall(text))


@fast("detectable_format:title")
def _title_batch(texts, kws):
    return [("<<" in t and any(m.group().lstrip("<").rstrip(">").strip() for m in _TITLE.finditer(t)))
            for t in texts]


