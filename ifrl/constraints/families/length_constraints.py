"""length_constraints:* — words, sentences, paragraphs."""

import re

from ifrl.constraints.families._common import WORDS, compare, relation_kwarg, relation_words
from ifrl.constraints.registry import KwargSpec, constraint, fast

_WORD = re.compile(r"\w+")
_PARA_DIVIDER = re.compile(r"\s?\*\*\*\s?")


@constraint(
    "length_constraints:number_words",
    kwargs=(KwargSpec("num_words", "int", lo=1, sample_lo=50, sample_hi=500), relation_kwarg()),
    describe=lambda kw: f"Answer with {relation_words(kw['relation'])} {kw['num_words']} words.",
    conflicts={"length_constraints:number_words"},
)
def number_words(text: str, kw: dict) -> bool:
    """Number of ``\\w+`` runs (NLTK's ``RegexpTokenizer(r"\\w+")``) vs the relation."""
    return compare(len(_WORD.findall(text)), kw["relation"], kw["num_words"])


@fast("length_constraints:number_words")
def _number_words_batch(texts, kws):
    from ifrl.constraints.engine_kernels import count_words

    counts = count_words(texts)
    return [compare(int(c), kw["relation"], kw["num_words"]) for c, kw in zip(counts, kws)]


@constraint(
    "length_constraints:number_sentences",
    kwargs=(KwargSpec("num_sentences", "int", lo=1, sample_lo=2, sample_hi=20), relation_kwarg()),
    describe=lambda kw: f"Your response should contain {relation_words(kw['relation'])} "
    f"{kw['num_sentences']} sentences.",
    conflicts={"length_constraints:number_sentences"},
)
def number_sentences(text: str, kw: dict) -> bool:
    """Punkt (English) sentence count vs the relation."""
    from ifrl.constraints.text.punkt import count_sentences_ref

    return compare(count_sentences_ref(text), kw["relation"], kw["num_sentences"])


@fast("length_constraints:number_sentences")
def _number_sentences_batch(texts, kws):
    from ifrl.constraints.text.punkt_fast import count_sentences_batch

    counts = count_sentences_batch(texts)
    return [compare(int(c), kw["relation"], kw["num_sentences"]) for c, kw in zip(counts, kws)]


@constraint(
    "length_constraints:number_paragraphs",
    kwargs=(KwargSpec("num_paragraphs", "int", lo=1, sample_lo=2, sample_hi=5),),
    describe=lambda kw: f"There should be {kw['num_paragraphs']} paragraphs. Paragraphs are separated "
    "with the markdown divider: ***",
    conflicts={"length_constraints:number_paragraphs", "length_constraints:nth_paragraph_first_word",
               "length_constraints:number_sentences"},
)
def number_paragraphs(text: str, kw: dict) -> bool:
    """Exactly N parts between ``***`` dividers; only the first/last part may be blank."""
    parts = _PARA_DIVIDER.split(text)
    n = len(parts)
    for i, p in enumerate(parts):
        if not p.strip():
            if i == 0 or i == len(parts) - 1:
                n -= 1
            else:
                return False
    return n == kw["num_paragraphs"]


def split_dividers(text: str) -> list[str]:
    r"""``re.split(r"\s?\*\*\*\s?", text)`` by substring search: a match is "***" with at
    most one whitespace character taken on each side (not one the previous match took)."""
    parts = []
    pos = prev = 0
    n = len(text)
    while True:
        q = text.find("***", pos)
        if q < 0:
            break
        start = q - 1 if q - 1 >= pos and text[q - 1].isspace() else q
        end = q + 3
        if end < n and text[end].isspace():
            end += 1
        parts.append(text[prev:start])
        prev = pos = end
    parts.append(text[prev:])
    return parts


@fast("length_constraints:number_paragraphs")
def _paragraphs_batch(texts, kws):
    out = []
    for t, kw in zip(texts, kws):
        if "***" not in t:  # one part: the whole (non-blank) response
            out.append(kw["num_paragraphs"] == 1)
            continue
        parts = split_dividers(t)
        n = len(parts)
        ok = True
        for i, p in enumerate(parts):
            if not p or p.isspace():
                if i == 0 or i == len(parts) - 1:
                    n -= 1
                else:
                    ok = False
                    break
        out.append(ok and n == kw["num_paragraphs"])
    return out


def _sample_nth(rng):
    n = rng.randint(2, 5)
    return {"num_paragraphs": n, "nth_paragraph": rng.randint(1, n), "first_word": rng.choice(WORDS)}


def _check_nth(kw):
    if kw["nth_paragraph"] > kw["num_paragraphs"]:
        raise ValueError(
            f"kwargs.nth_paragraph={kw['nth_paragraph']} is larger than num_paragraphs={kw['num_paragraphs']}; "
            "choose 1 <= nth_paragraph <= num_paragraphs"
        )
    return {**kw, "first_word": kw["first_word"].lower()}


@constraint(
    "length_constraints:nth_paragraph_first_word",
    kwargs=(
        KwargSpec("num_paragraphs", "int", lo=1, sample_lo=2, sample_hi=5),
        KwargSpec("nth_paragraph", "int", lo=1, sample_lo=1, sample_hi=5),
        KwargSpec("first_word", "str", doc="required first word of that paragraph"),
    ),
    prepare=_check_nth,
    describe=lambda kw: f"There should be {kw['num_paragraphs']} paragraphs. Paragraphs and only paragraphs "
    f"are separated with each other by two new lines as if it was '\\n\\n' in python. Paragraph "
    f"{kw['nth_paragraph']} must start with word {kw['first_word']}.",
    sample=_sample_nth,
    conflicts={"length_constraints:nth_paragraph_first_word", "length_constraints:number_paragraphs"},
)
def nth_paragraph_first_word(text: str, kw: dict) -> bool:
    """N non-blank ``\\n\\n``-separated paragraphs and the nth one starts with the word
    (lower-cased, leading quotes dropped, cut at the first . , ? ! ' or ")."""
    paragraphs = re.split(r"\n\n", text)
    n = sum(1 for p in paragraphs if p.strip())
    nth = kw["nth_paragraph"]
    if nth > n:
        return False
    return n == kw["num_paragraphs"] and _first_word_is(paragraphs[nth - 1], kw["first_word"])


def _first_word_is(paragraph: str, want: str) -> bool:
    """The paragraph's first word, lower-cased, leading quotes dropped, cut at the first
    . , ? ! ' or ", equals ``want``."""
    para = paragraph.strip()
    if not para:
        return False
    word = para.split()[0].strip().lstrip("'").lstrip('"')
    first = []
    for ch in word:
        if ch in ".,?!'\"":
            break
        first.append(ch.lower())
    return "".join(first) == want


@fast("length_constraints:nth_paragraph_first_word")
def _nth_paragraph_batch(texts, kws):
    # nth_paragraph_first_word with str.split, which splits on the literal like re.split
    out = []
    for text, kw in zip(texts, kws):
        paragraphs = text.split("\n\n")
        n = sum(1 for p in paragraphs if p and not p.isspace())
        nth = kw["nth_paragraph"]
        if nth > n or n != kw["num_paragraphs"]:
            out.append(False)
            continue
        out.append(_first_word_is(paragraphs[nth - 1], kw["first_word"]))
    return out
