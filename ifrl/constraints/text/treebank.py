"""Penn-Treebank-style word tokens, as NLTK's ``word_tokenize`` produces them.

IFEval's ``change_case:capital_word_frequency`` counts the all-capital tokens of
``nltk.word_tokenize(text)``: Punkt sentences, each split by the improved Treebank
rules (quotes, punctuation, brackets, dashes, clitics such as ``n't`` and ``'s``,
and a handful of fused words such as "cannot" -> "can not"). The rules below are
the Penn Treebank conventions in the order NLTK 3.10 applies them; they only insert
spaces (and rewrite ASCII double quotes as `` and ''), so the tokens are the text's
whitespace-separated pieces split further.

``capital_count_fast`` skips sentences whose result is forced: a sentence without
any upper-case letter has no capital token.
"""

from __future__ import annotations

import re

from ifrl.constraints.text.punkt import sentence_spans_ref

_SUBS_START = [
    (re.compile("([«“‘„]|[`]+)"), r" \1 "),
    (re.compile(r'^"'), r"``"),
    (re.compile(r"(``)"), r" \1 "),
    (re.compile(r"([ \(\[{<])(\"|\'{2})"), r"\1 `` "),
    (re.compile(r"(?i)(?<!\w)(\')(?!(?:re|ve|ll|m|t|s|d|n)\b)(?=\w)"), r"\1 "),
]
_SUBS_PUNCT = [
    (re.compile(r'([^\.])(\.)([\]\)}>"\'' "»”’ " r"]*+)\s*$"), r"\1 \2 \3 "),
    (re.compile(r"([:,])([^\d])"), r" \1 \2"),
    (re.compile(r"([:,])$"), r" \1 "),
    (re.compile(r"\.{2,}"), r" \g<0> "),
    (re.compile(r"[;@#$%&]"), r" \g<0> "),
    (re.compile(r"[\u2012-\u2015]"), r" \g<0> "),
    (re.compile(r'([^\.])(\.)([\]\)}>"\']*)\s*$'), r"\1 \2\3 "),
    (re.compile(r"[?!]"), r" \g<0> "),
    (re.compile(r"([^'])' "), r"\1 ' "),
    (re.compile(r"[*]"), r" \g<0> "),
    (re.compile(r"[\]\[\(\)\{\}\<\>]"), r" \g<0> "),
    (re.compile(r"--"), r" -- "),
]
_SUBS_END = [
    (re.compile("([»”’])"), r" \1 "),
    (re.compile(r"''"), " '' "),
    (re.compile(r'"'), " '' "),
    (re.compile(r"\s+"), " "),
    (re.compile(r"([^' ])('[sS]|'[mM]|'[dD]|') "), r"\1 \2 "),
    (re.compile(r"([^' ])('ll|'LL|'re|'RE|'ve|'VE|n't|N'T) "), r"\1 \2 "),
]
_FUSED = [
    re.compile(p)
    for p in (
        r"(?i)\b(can)(not)\b", r"(?i)\b(d)('ye)\b", r"(?i)\b(gim)(me)\b", r"(?i)\b(gon)(na)\b",
        r"(?i)\b(got)(ta)\b", r"(?i)\b(lem)(me)\b", r"(?i)\b(more)('n)\b", r"(?i)\b(wan)(na)(?=\s)",
        r"(?i) ('t)(is)\b", r"(?i) ('t)(was)\b",
    )
]


def treebank_tokens(sentence: str) -> list[str]:
    """Treebank tokens of one sentence."""
    s = sentence
    for rx, rep in _SUBS_START:
        s = rx.sub(rep, s)
    for rx, rep in _SUBS_PUNCT:
        s = rx.sub(rep, s)
    s = " " + s + " "
    for rx, rep in _SUBS_END:
        s = rx.sub(rep, s)
    for rx in _FUSED:
        s = rx.sub(r" \1 \2 ", s)
    return s.split()


def word_tokenize_ref(text: str, spans=None) -> list[str]:
    """``nltk.word_tokenize(text)``: Treebank tokens of each Punkt sentence."""
    if spans is None:
        spans = sentence_spans_ref(text)
    out: list[str] = []
    for a, b in spans:
        out.extend(treebank_tokens(text[a:b]))
    return out


def capital_count_ref(text: str) -> int:
    return sum(1 for t in word_tokenize_ref(text) if t.isupper())


def capital_count_fast(text: str, spans) -> int:
    """Same as ``capital_count_ref`` given the Punkt spans, skipping sentences that have
    no cased upper-case character (their tokens cannot be all-capital)."""
    n = 0
    for a, b in spans:
        sent = text[a:b]
        if sent.islower() or not any(c.isupper() for c in sent):
            continue
        n += sum(1 for t in treebank_tokens(sent) if t.isupper())
    return n
