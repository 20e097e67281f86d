"""keywords:* — required, counted, forbidden words and letter counts.

IFEval treats keywords as regular expressions searched case-insensitively. The fast
path (existence, frequency and forbidden words in one numba pass, ``keyword_kernels``)
is plain substring search in lower-cased text where that is provably the same: the
keyword is ASCII without regex metacharacters, and the text has none of the four
non-ASCII characters that case-insensitive matching pairs with ASCII ones (e.g.
KELVIN SIGN and "k"). Other checks run their reference.
"""

import re
from functools import lru_cache

from ifrl.constraints.families._common import WORDS, ascii_or_reference, compare, relation_kwarg, relation_words
from ifrl.constraints.keyword_kernels import COUNT, EXISTS, WHOLE, check_code, keyword_checks, pack_words
from ifrl.constraints.registry import KwargSpec, constraint, fast, fast_shared


@lru_cache(maxsize=1 << 16)
def _literal_ascii(word: str) -> bool:
    # ASCII letters and digits are never escaped; anything else is checked by re.escape
    return word.isascii() and (word.isalnum() or re.escape(word) == word)


# The only non-ASCII characters that re.IGNORECASE matches to a printable ASCII one
# (I WITH DOT ABOVE, DOTLESS I, LONG S, KELVIN SIGN); U+0130 is also the only character
# whose lower() is longer than one character, and lower() never changes whether a
# character is a word character (tests/constraints check all three facts).
FOLDS_TO_ASCII = ("\u0130", "\u0131", "\u017f", "\u212a")


def ascii_fold_safe(t: str) -> bool:
    """Case-insensitive matching of ASCII literals in ``t`` is matching in ``t.lower()``,
    position for position."""
    return t.isascii() or not any(c in t for c in FOLDS_TO_ASCII)


@constraint(
    "keywords:existence",
    kwargs=(KwargSpec("keywords", "str_list", doc="words that must all appear"),),
    describe=lambda kw: "Include keywords " + ", ".join(kw["keywords"]) + " in the response.",
    sample=lambda rng: {"keywords": rng.sample(WORDS, 2)},
    conflicts={"keywords:existence"},
)
def existence(text: str, kw: dict) -> bool:
    """Every keyword matches (as a case-insensitive regex) somewhere."""
    return all(re.search(k, text, flags=re.IGNORECASE) for k in kw["keywords"])



@constraint(
    "keywords:frequency",
    kwargs=(
        KwargSpec("keyword", "str", doc="the word to count"),
        KwargSpec("frequency", "int", lo=1, sample_lo=1, sample_hi=3),
        relation_kwarg(),
    ),
    prepare=lambda kw: {**kw, "keyword": kw["keyword"].strip()},
    describe=lambda kw: f"In your response, the word {kw['keyword'].strip()} should appear "
    f"{relation_words(kw['relation'])} {kw['frequency']} times.",
    sample=lambda rng: {"keyword": rng.choice(WORDS), "frequency": rng.randint(1, 3),
                        "relation": rng.choice(("less than", "at least"))},
    conflicts={"keywords:frequency"},
)
def frequency(text: str, kw: dict) -> bool:
    """Count of non-overlapping case-insensitive regex matches vs the relation."""
    return compare(len(re.findall(kw["keyword"], text, flags=re.IGNORECASE)), kw["relation"], kw["frequency"])



@constraint(
    "keywords:forbidden_words",
    kwargs=(KwargSpec("forbidden_words", "str_list", doc="words that must not appear"),),
    describe=lambda kw: "Do not include keywords " + ", ".join(kw["forbidden_words"]) + " in the response.",
    sample=lambda rng: {"forbidden_words": rng.sample(WORDS, 2)},
    conflicts={"keywords:forbidden_words"},
)
def forbidden_words(text: str, kw: dict) -> bool:
    """No forbidden word matches as a whole word (``\\b`` boundaries, case-insensitive)."""
    return not any(re.search(r"\b" + w + r"\b", text, flags=re.IGNORECASE) for w in kw["forbidden_words"])


@lru_cache(maxsize=1 << 16)
def _kernel_words(words: tuple, kind: int) -> bytes | None:
    """The words lower-cased and packed for the kernel (``pack_words``), when it may search
    them as ``kind``: ASCII literals, and non-empty for ``COUNT`` / ``WHOLE`` (an empty
    regex matches between characters); None sends the check to its reference."""
    if not all(map(_literal_ascii, words)) or (kind != EXISTS and not all(words)):
        return None
    return pack_words([w.lower() for w in words])


_KINDS = {"keywords:existence": (EXISTS, "keywords"), "keywords:frequency": (COUNT, "keyword"),
          "keywords:forbidden_words": (WHOLE, "forbidden_words")}
_REFERENCE = {"keywords:existence": existence, "keywords:frequency": frequency,
              "keywords:forbidden_words": forbidden_words}


@fast_shared("keywords:existence", "keywords:frequency", "keywords:forbidden_words")
def _keyword_ids_batch(ids, texts, kws):
    """The three keyword ids in one numba pass (``keyword_kernels``) where the words are
    ASCII literals and the text is ``ascii_fold_safe``; their references otherwise (those
    texts go through the kernel with no words and their verdicts are replaced)."""
    codes, packed, ref = [], [], []
    for i, (iid, t, kw) in enumerate(zip(ids, texts, kws)):
        kind, field = _KINDS[iid]
        ws = kw[field]
        p = _kernel_words((ws,) if kind == COUNT else tuple(ws), kind)
        if p is None or not ascii_fold_safe(t):
            ref.append(i)
            codes.append(EXISTS)
            packed.append(b"")
        else:
            codes.append(check_code(kind, kw["frequency"], kw["relation"] == "less than") if kind == COUNT else kind)
            packed.append(p)
    out = keyword_checks(texts, codes, packed)
    for i in ref:
        out[i] = _REFERENCE[ids[i]](texts[i], kws[i])
    return out


def _prep_letter(kw):
    # IFEval draws a random letter when `letter` is not one ASCII letter (two IFEval rows
    # have "#" and "!"); we count the given character literally instead, so verdicts are
    # deterministic.
    letter = kw["letter"].strip()
    if len(letter) != 1:
        raise ValueError(f"kwargs.letter={kw['letter']!r} for 'keywords:letter_frequency' must be one character, e.g. 'a'")
    return {**kw, "letter": letter.lower()}


@constraint(
    "keywords:letter_frequency",
    kwargs=(
        KwargSpec("letter", "str", doc="one letter a-z"),
        KwargSpec("let_frequency", "int", lo=1, sample_lo=1, sample_hi=10),
        relation_kwarg("let_relation"),
    ),
    prepare=_prep_letter,
    describe=lambda kw: f"In your response, the letter {kw['letter'].strip()} should appear "
    f"{relation_words(kw['let_relation'])} {kw['let_frequency']} times.",
    sample=lambda rng: {"letter": rng.choice("abcdefghijklmnopqrstuvwxyz"), "let_frequency": rng.randint(1, 10),
                        "let_relation": rng.choice(("less than", "at least"))},
    conflicts={"keywords:letter_frequency"},
)
def letter_frequency(text: str, kw: dict) -> bool:
    """Occurrences of the letter in the lower-cased response vs the relation."""
    return compare(text.lower().count(kw["letter"]), kw["let_relation"], kw["let_frequency"])


def _letter_ascii(text: str, kw: dict) -> bool:
    # in ASCII text a lower-case ASCII letter l comes from l or L only
    c = kw["letter"]
    if not c.isascii():
        return letter_frequency(text, kw)
    n = text.count(c) + text.count(c.upper()) if c.isalpha() else text.count(c)
    return compare(n, kw["let_relation"], kw["let_frequency"])


@fast("keywords:letter_frequency")
def _letter_batch(texts, kws):
    return ascii_or_reference(texts, kws, _letter_ascii, letter_frequency)
