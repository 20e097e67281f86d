"""change_case:* — all-capital words, all upper / all lower English responses.

The two English-case ids share their fast path with language:response_language
(``families/language.py``): one language-detection pass serves all three.
"""

from ifrl.constraints.families._common import compare, relation_kwarg, relation_words
from ifrl.constraints.registry import KwargSpec, constraint, fast


@constraint(
    "change_case:capital_word_frequency",
    kwargs=(KwargSpec("capital_frequency", "int", lo=1, sample_lo=1, sample_hi=20), relation_kwarg("capital_relation")),
    describe=lambda kw: f"In your response, words with all capital letters should appear "
    f"{relation_words(kw['capital_relation'])} {kw['capital_frequency']} times.",
    conflicts={"change_case:capital_word_frequency", "change_case:english_lowercase", "change_case:english_capital"},
)
def capital_word_frequency(text: str, kw: dict) -> bool:
    """Number of ``word_tokenize`` tokens that are ``str.isupper()`` vs the relation."""
    from ifrl.constraints.text.treebank import capital_count_ref

    return compare(capital_count_ref(text), kw["capital_relation"], kw["capital_frequency"])


@fast("change_case:capital_word_frequency")
def _capital_batch(texts, kws):
    from ifrl.constraints.engine_kernels import capital_counts_batch

    out = [False] * len(texts)
    todo = []
    for i, (t, kw) in enumerate(zip(texts, kws)):
        if t.islower():  # no upper-case letter at all: no capital token
            out[i] = compare(0, kw["capital_relation"], kw["capital_frequency"])
        else:
            todo.append(i)
    for i, c in zip(todo, capital_counts_batch([texts[i] for i in todo])):
        out[i] = compare(c, kws[i]["capital_relation"], kws[i]["capital_frequency"])
    return out


@constraint(
    "change_case:english_capital",
    describe=lambda kw: "Your entire response should be in English, and in all capital letters.",
    conflicts={"change_case:english_capital"},
)
def english_capital(text: str, kw: dict) -> bool:
    """``str.isupper()`` and langdetect says English."""
    from ifrl.constraints.text.langdetect import detect_ref

    if not text.isupper():
        return False
    lang = detect_ref(text)
    return lang is None or lang == "en"


@constraint(
    "change_case:english_lowercase",
    describe=lambda kw: "Your entire response should be in English, and in all lowercase letters. "
    "No capital letters are allowed.",
    conflicts={"change_case:english_lowercase", "change_case:english_capital"},
)
def english_lowercase(text: str, kw: dict) -> bool:
    """``str.islower()`` and langdetect says English."""
    from ifrl.constraints.text.langdetect import detect_ref

    if not text.islower():
        return False
    lang = detect_ref(text)
    return lang is None or lang == "en"
