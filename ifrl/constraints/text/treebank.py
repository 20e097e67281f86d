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
from bisect import bisect_right

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


_UPPER_CHUNK = re.compile(r"(?<!\S)\S*[A-Z]\S*")  # anchored at chunk starts: linear time
# letters from the first to the last one joined only by word characters or a single
# '-' / '.', with non-letters around: no Treebank rule splits between those letters
_SIMPLE_CHUNK = re.compile(r"[^A-Za-z]*([A-Za-z](?:(?:\w|[-.](?![-.]))*[A-Za-z])?)[^A-Za-z]*")
# letters ' letters at the end of the chunk: a possible clitic ('s, n't, 're, ...)
_CLITIC_CHUNK = re.compile(r"[^A-Za-z]*([A-Za-z]+)'([A-Za-z]+)")
_WORD_RUN = re.compile(r"\w+")
_FUSED_WORDS = frozenset({"cannot", "gimme", "gonna", "gotta", "lemme", "wanna"})
_CLITIC_A = frozenset({"s", "S", "m", "M", "d", "D"})
_CLITIC_B = frozenset({"ll", "LL", "re", "RE", "ve", "VE"})


def _chunk_capitals(chunk: str) -> int:
    """All-capital tokens of one ASCII whitespace-free chunk, or -1 when the chunk's
    tokenization depends on its neighbours (the sentence then goes through the rules).

    The Treebank rules only split and re-quote; between two word characters they split
    only inside a few fused words (can|not, gon|na, ...) and before clitics ('s, 're,
    n't) that a space follows. Pieces without letters are never all-capital, so only the
    pieces that hold letters matter.
    """
    m = _SIMPLE_CHUNK.fullmatch(chunk)
    if m is not None:
        for w in _WORD_RUN.findall(chunk):
            if w.lower() in _FUSED_WORDS:
                return -1
        return 1 if m.group(1).isupper() else 0
    m = _CLITIC_CHUNK.fullmatch(chunk)
    if m is not None:
        a, b = m.group(1), m.group(2)
        if a.lower() in _FUSED_WORDS or (a.lower(), b.lower()) in (("d", "ye"), ("more", "n")):
            return -1
        if b in _CLITIC_A or b in _CLITIC_B:
            return int(a.isupper()) + int(("'" + b).isupper())
        if (a[-1] == "n" and b == "t") or (a[-1] == "N" and b == "T"):
            return int(len(a) > 1 and a[:-1].isupper()) + int(b == "T")
        return 1 if (a + b).isupper() else 0
    return -1


def _sentence_capitals(sent: str) -> int:
    return sum(1 for t in treebank_tokens(sent) if t.isupper())


def capital_count_fast(text: str, spans) -> int:
    """Same as ``capital_count_ref`` given the Punkt spans: ASCII texts are counted chunk
    by chunk (``_chunk_capitals``); a sentence with an undecided chunk, and non-ASCII
    texts, go through the full Treebank rules."""
    if not spans:
        return 0
    if not text.isascii():
        n = 0
        for a, b in spans:
            sent = text[a:b]
            if not sent.islower() and any(c.isupper() for c in sent):
                n += _sentence_capitals(sent)
        return n
    starts = [a for a, _ in spans]
    per = [0] * len(spans)
    risky = [False] * len(spans)
    for m in _UPPER_CHUNK.finditer(text):
        cs, ce = m.span()
        k = bisect_right(starts, cs) - 1
        if k < 0 or ce > spans[k][1]:  # straddles a sentence boundary
            for j in range(max(k, 0), len(spans)):
                if spans[j][0] >= ce:
                    break
                risky[j] = True
            continue
        if risky[k]:
            continue
        c = _chunk_capitals(m.group())
        if c < 0:
            risky[k] = True
        else:
            per[k] += c
    n = 0
    for k, (a, b) in enumerate(spans):
        n += _sentence_capitals(text[a:b]) if risky[k] else per[k]
    return n
