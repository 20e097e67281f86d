"""numba port of ``punkt.sentence_spans_ref`` over UTF-32 code points.

Same steps as the reference (candidates, per-candidate context annotation, boundary
realignment); the English model's word types are looked up in a hashed vocabulary
(FNV-1a over lower-cased code points, verified against the stored key). A text whose
tokens need a multi-code-point lower-casing (e.g. U+0130) is handed back to the
Python reference, which the tests check the kernel against.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from numba import njit, prange

from ifrl.constraints.text.punkt import (
    CLOSERS, NON_WORD, NOT_WORD_START, ORTHO_BEG_LC, ORTHO_LC, ORTHO_MID_UC, ORTHO_UC,
    english_model, sentence_spans_ref,
)
from ifrl.constraints.text.unicode import encode_texts, in_slices, parallel_kernel, tables, thread_runs

FNV_OFFSET = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3
MASK64 = (1 << 64) - 1

F_WORD, F_SPACE, F_UPPER, F_LOWER, F_DIGIT, F_ASCII_WS, F_LOWER_MULTI = 1, 2, 4, 8, 32, 64, 128
# per-code-point punctuation classes (bit flags in a small table)
C_NONWORD, C_NOSTART, C_CLOSER = 1, 2, 4

NUMBER_TYPE = "##number##"
SLOT_BITS = 16  # hash slots of the vocabulary (~20k word types)


def fnv(s: str) -> int:
    h = FNV_OFFSET
    for ch in s:
        h ^= ord(ch)
        h = (h * FNV_PRIME) & MASK64
    return h


# One vocabulary record per hash slot, (hash, meta): meta packs the word's offset in the
# code-point array (bits 0-31), its length (32-39), abbreviation (40) and sentence-starter
# (41) flags and its orthographic context (48-55); bit 63 marks a used slot. A look-up
# then reads one record and the word's code points, and a word's id is its slot.
M_ABBREV, M_STARTER, M_ORTHO, M_USED = 40, 41, 48, 63


@lru_cache(maxsize=None)
def model_arrays():
    """``(records[uint64, 2^SLOT_BITS x 2], code points[int32], collocations[int64, sorted
    slot pairs], slot of the number type, punctuation classes[uint8, 0x10000])``."""
    m = english_model()
    vocab = sorted(set(m.abbrev_types) | set(m.sent_starters) | set(m.ortho_context)
                   | {a for a, _ in m.collocations} | {b for _, b in m.collocations} | {NUMBER_TYPE})
    hashes = [fnv(w) for w in vocab]
    if len(set(hashes)) != len(hashes):  # pragma: no cover - would need a 64-bit collision
        raise RuntimeError("punkt vocabulary hash collision; change FNV seed")
    size = 1 << SLOT_BITS
    rec = np.zeros((size, 2), dtype=np.uint64)
    cps: list[int] = []
    slot: dict[str, int] = {}
    for w, h in zip(vocab, hashes):
        ortho = m.ortho_context.get(w, 0)
        if len(w) > 0xFF or not 0 <= ortho <= 0xFF:  # pragma: no cover - NLTK's English model
            raise RuntimeError(f"punkt vocabulary entry {w!r} does not fit a record")
        q = h >> (64 - SLOT_BITS)
        while rec[q, 1]:
            q = (q + 1) & (size - 1)
        meta = (len(cps) | len(w) << 32 | (w in m.abbrev_types) << M_ABBREV | (w in m.sent_starters) << M_STARTER
                | ortho << M_ORTHO | 1 << M_USED)
        rec[q] = (h, meta)
        slot[w] = q
        cps.extend(ord(c) for c in w)
    coll = np.array(sorted(slot[a] * size + slot[b] for a, b in m.collocations), dtype=np.int64)
    punct = np.zeros(0x10000, dtype=np.uint8)
    for chars, bit in ((NON_WORD, C_NONWORD), (NOT_WORD_START, C_NOSTART), (CLOSERS, C_CLOSER)):
        for c in chars:
            punct[ord(c)] |= bit
    return rec, np.array(cps, dtype=np.int32), coll, slot[NUMBER_TYPE], punct


@njit(cache=True, inline="always")
def _meta(rec, j, bit, width):
    return np.int64((rec[j, 1] >> np.uint64(bit)) & np.uint64((1 << width) - 1))


@njit(cache=True, inline="always")
def punct_class(punct, c):
    """Punkt's punctuation class bits of code point ``c`` (C_NONWORD, C_NOSTART, C_CLOSER;
    0 above the BMP) from the ``punct`` table of ``model_arrays``."""
    return punct[c] if c < 0x10000 else 0


@njit(cache=True, inline="always")
def _multichar(cps, p, le, flags):
    """Length of Punkt's multi-character punctuation at p (--..., ....., ". . ."), else 0.
    Every such run starts with "-" or ".", so other characters return at once."""
    if cps[p] != 45 and cps[p] != 46:
        return 0
    if p + 1 < le and cps[p] == 45 and cps[p + 1] == 45:
        q = p
        while q < le and cps[q] == 45:
            q += 1
        return q - p
    if p + 1 < le and cps[p] == 46 and cps[p + 1] == 46:
        q = p
        while q < le and cps[q] == 46:
            q += 1
        return q - p
    k = 0
    q = p
    while q + 1 < le and cps[q] == 46 and (flags[cps[q + 1]] & 2) != 0:
        k += 1
        q += 2
    if k >= 2 and q < le and cps[q] == 46:
        return 2 * k + 1
    if k >= 3:
        return 2 * k - 1
    return 0


@njit(cache=True, inline="always")
def _lookup(cps, s, e, lower, flags, rec, vcps):
    """Vocabulary id (slot) of lower(cps[s:e]); -1 if absent; -2 if lower-casing is not 1:1."""
    h = np.uint64(0xCBF29CE484222325)
    for k in range(s, e):
        c = cps[k]
        if flags[c] & 128:
            return -2
        h ^= np.uint64(lower[c])
        h *= np.uint64(0x100000001B3)
    mask = rec.shape[0] - 1
    q = np.int64(h >> np.uint64(64 - SLOT_BITS))
    while True:  # open addressing, linear probing; the table is at most half full
        if rec[q, 1] == 0:
            return -1
        if rec[q, 0] == h:
            break
        q = (q + 1) & mask
    if _meta(rec, q, 32, 8) != e - s:
        return -1
    a = _meta(rec, q, 0, 32)
    for k in range(e - s):
        if vcps[a + k] != lower[cps[s + k]]:
            return -1
    return q


@njit(cache=True, inline="always")
def _is_numeric(cps, s, e, flags):
    p = s
    if p < e and cps[p] == 45:
        p += 1
    if p < e and (cps[p] == 46 or cps[p] == 44):
        p += 1
    if not (p < e and (flags[cps[p]] & 32) != 0):
        return False
    p += 1
    while p < e and ((flags[cps[p]] & 32) != 0 or cps[p] == 44 or cps[p] == 46 or cps[p] == 45):
        p += 1
    return p == e


@njit(cache=True, inline="always")
def _is_alnum_ascii(c):
    return (48 <= c <= 57) or (65 <= c <= 90) or (97 <= c <= 122)


@njit(cache=True, inline="always")
def _simple_pair(cps, cs, ce, flags, ts, te):
    """2 when the context cps[cs:ce] is "A. B" (A, B runs of ASCII letters and digits,
    whitespace between), with its two tokens "A." and "B" written to ``ts``/``te`` as
    ``_tokenize`` writes them; 0 otherwise."""
    p = cs
    while p < ce and _is_alnum_ascii(cps[p]):
        p += 1
    if p == cs or p >= ce or cps[p] != 46:
        return 0
    m = p + 1
    q = m
    while q < ce and (flags[cps[q]] & 2) != 0:
        q += 1
    if q == m or q >= ce:
        return 0
    r = q
    while r < ce and _is_alnum_ascii(cps[r]):
        r += 1
    if r != ce:
        return 0
    ts[0] = cs
    te[0] = m
    ts[1] = q
    te[1] = ce
    return 2


@njit(cache=True, inline="always")
def _tokenize(cps, cs, ce, flags, punct, ts, te):
    """Punkt's word tokens of cps[cs:ce], line by line, as (ts[i], te[i]); their number."""
    nt = 0
    ls = cs
    while ls <= ce:
        le = ls
        while le < ce and cps[le] != 10:
            le += 1
        blank = True
        for k in range(ls, le):
            if (flags[cps[k]] & 2) == 0:
                blank = False
                break
        if not blank:
            p = ls
            while p < le:
                L = _multichar(cps, p, le, flags)
                if L > 0:
                    ts[nt] = p
                    te[nt] = p + L
                    nt += 1
                    p += L
                    continue
                c = cps[p]
                if flags[c] & 2:
                    p += 1
                    continue
                if (punct_class(punct, c) & 2) == 0:
                    e = p + 1
                    while True:
                        if e >= le:
                            break
                        d = cps[e]
                        if (flags[d] & 2) or (punct_class(punct, d) & 1) or _multichar(cps, e, le, flags) > 0:
                            break
                        if d == 44:
                            if e + 1 >= le:
                                break
                            d2 = cps[e + 1]
                            if (flags[d2] & 2) or (punct_class(punct, d2) & 1) or _multichar(cps, e + 1, le, flags) > 0:
                                break
                        e += 1
                    ts[nt] = p
                    te[nt] = e
                    nt += 1
                    p = e
                else:
                    ts[nt] = p
                    te[nt] = p + 1
                    nt += 1
                    p += 1
        ls = le + 1
    return nt


@njit(cache=True, inline="always")
def _context_break(cps, cs, ce, flags, lower, punct, rec, vcps, coll, num_id,
                   ts, te, bits, tid):
    """1 if the context cps[cs:ce] has a non-final sentence break, 0 if not, -1 to defer.

    ``ts``/``te``/``tid``/``bits`` are scratch arrays at least ``ce - cs + 1`` long; ``tid[i]``
    keeps the first pass's vocabulary id of token i without its final period (-3 when not
    looked up), which the second pass needs again."""
    nt = _simple_pair(cps, cs, ce, flags, ts, te)
    if nt == 0:  # the general tokenizer
        nt = _tokenize(cps, cs, ce, flags, punct, ts, te)
    if nt < 2:
        return 0
    # first pass
    sentbreak = bits[0]
    abbr = bits[1]
    ellipsis = bits[2]
    numeric = bits[3]
    for i in range(nt):
        sentbreak[i] = False
        abbr[i] = False
        ellipsis[i] = False
        tid[i] = -3
        s = ts[i]
        e = te[i]
        L = e - s
        numeric[i] = _is_numeric(cps, s, e, flags)
        if L == 1 and (cps[s] == 46 or cps[s] == 63 or cps[s] == 33):
            sentbreak[i] = True
            continue
        alldots = L >= 2
        for k in range(s, e):
            if cps[k] != 46:
                alldots = False
                break
        if alldots:
            ellipsis[i] = True
            continue
        if cps[e - 1] == 46 and not (L >= 2 and cps[e - 2] == 46):
            j = _lookup(cps, s, e - 1, lower, flags, rec, vcps)
            if j == -2:
                return -1
            tid[i] = j
            isab = j >= 0 and _meta(rec, j, M_ABBREV, 1) != 0
            if not isab:
                dash = -1
                for k in range(s, e - 1):
                    if cps[k] == 45:
                        dash = k
                if dash >= 0:
                    j2 = _lookup(cps, dash + 1, e - 1, lower, flags, rec, vcps)
                    if j2 == -2:
                        return -1
                    isab = j2 >= 0 and _meta(rec, j2, M_ABBREV, 1) != 0
            if isab:
                abbr[i] = True
            else:
                sentbreak[i] = True
    # second pass, pair by pair; a break followed by another token ends the search
    nv = rec.shape[0]
    for i in range(nt - 1):
        s1 = ts[i]
        e1 = te[i]
        if cps[e1 - 1] == 46:
            # typ = type without its final period; next_typ = type without a sentence-break period
            if numeric[i]:
                typ = num_id
            else:
                te1 = e1 - 1 if e1 - s1 > 1 else e1
                if te1 < e1 and tid[i] != -3:  # the first pass looked up cps[s1:e1 - 1]
                    typ = tid[i]
                else:
                    typ = _lookup(cps, s1, te1, lower, flags, rec, vcps)
                if typ == -2:
                    return -1
            s2 = ts[i + 1]
            e2 = te[i + 1]
            if numeric[i + 1]:
                nxt = num_id
            else:
                te2 = e2 - 1 if (sentbreak[i + 1] and e2 - s2 > 1 and cps[e2 - 1] == 46) else e2
                if te2 < e2 and tid[i + 1] != -3:  # the first pass looked up cps[s2:e2 - 1]
                    nxt = tid[i + 1]
                else:
                    nxt = _lookup(cps, s2, te2, lower, flags, rec, vcps)
                if nxt == -2:
                    return -1
            initial = (e1 - s1 == 2 and (flags[cps[s1]] & 1) != 0 and (flags[cps[s1]] & 32) == 0)
            done = False
            if typ >= 0 and nxt >= 0:
                key = typ * nv + nxt
                k = np.searchsorted(coll, key)
                if k < coll.shape[0] and coll[k] == key:
                    sentbreak[i] = False
                    abbr[i] = True
                    done = True
            if not done:
                # orthographic heuristic for the next token: 1 starter, 0 not, -1 unknown
                c2 = cps[s2]
                if e2 - s2 == 1 and (c2 == 59 or c2 == 58 or c2 == 44 or c2 == 46 or c2 == 33 or c2 == 63):
                    orth = 0
                else:
                    octx = _meta(rec, nxt, M_ORTHO, 8) if nxt >= 0 else 0
                    up = (flags[c2] & 4) != 0
                    lo = (flags[c2] & 8) != 0
                    if up and (octx & ORTHO_LC) != 0 and (octx & ORTHO_MID_UC) == 0:
                        orth = 1
                    elif lo and ((octx & ORTHO_UC) != 0 or (octx & ORTHO_BEG_LC) == 0):
                        orth = 0
                    else:
                        orth = -1
                if (abbr[i] or ellipsis[i]) and not initial:
                    if orth == 1:
                        sentbreak[i] = True
                        done = True
                    elif (flags[c2] & 4) != 0 and nxt >= 0 and _meta(rec, nxt, M_STARTER, 1) != 0:
                        sentbreak[i] = True
                        done = True
                if not done and (initial or typ == num_id):
                    if orth == 0:
                        sentbreak[i] = False
                        abbr[i] = True
                    elif orth == -1 and initial and (flags[c2] & 4) != 0 and not (
                        nxt >= 0 and (_meta(rec, nxt, M_ORTHO, 8) & ORTHO_LC) != 0
                    ):
                        sentbreak[i] = False
                        abbr[i] = True
        if sentbreak[i]:
            return 1
    return 0


@njit(cache=True, _nrt=False)
def _spans_one(cps, flags, lower, punct, rec, vcps, coll, num_id, out,
               raw, ts, te, bits, tid):
    """Write sentence spans of one text into out[k, 0:2]; return their count or -1 (defer).
    ``raw`` (rows), ``ts``, ``te``, ``tid`` and ``bits`` (columns) are scratch of at least
    ``n + 2`` entries for a text of ``n`` code points."""
    n = cps.shape[0]
    nraw = 0
    last = 0
    prev_m = -1
    prev_start = 0
    prev_stop = 0
    prev_ae = 0
    prev_next = -1
    i = 0
    while i <= n:
        is_m = False
        ae = 0
        nx = -1
        # nothing happens between sentence-end characters: skip to the next one, 16 code
        # points at a time (a branch-free test that vectorises) while none is among them
        while i + 16 <= n:
            hit = False
            for q in range(i, i + 16):
                c = cps[q]
                hit |= (c == 46) | (c == 63) | (c == 33)
            if hit:
                break
            i += 16
        while i < n and cps[i] != 46 and cps[i] != 63 and cps[i] != 33:
            i += 1
        if i + 1 < n:  # cps[i] is a [.?!] with a character after it
            d = cps[i + 1]
            if punct_class(punct, d) & 1:
                is_m = True
                ae = i + 2
            elif flags[d] & 2:
                q = i + 1
                while q < n and (flags[cps[q]] & 2) != 0:
                    q += 1
                if q < n:
                    r = q
                    while r < n and (flags[cps[r]] & 2) == 0:
                        r += 1
                    is_m = True
                    ae = r
                    nx = q
        if is_m or i == n:
            if is_m:
                # the last (ASCII) whitespace in cps[prev_stop:i], as an offset from prev_stop; 0
                # (also when it sits at prev_stop itself) keeps the previous start, as NLTK does.
                # The search goes back at most to the previous candidate: linear over the text.
                j = i - 1
                while j >= prev_stop and (flags[cps[j]] & 64) == 0:
                    j -= 1
                ws = j - prev_stop if j >= prev_stop else 0
                start = ws + prev_stop + 1 if ws else prev_start
            if prev_m >= 0 and (i == n or prev_stop <= start):
                if cps[prev_m] != 46:  # "?" and "!" are tokens of their own, always followed by one:
                    b = 1  # a break (NLTK's first pass marks them, its second pass only revisits "x.")
                else:
                    b = _context_break(cps, prev_start, prev_ae, flags, lower, punct, rec, vcps, coll, num_id, ts,
                                       te, bits, tid)
                if b < 0:
                    return -1
                if b == 1:
                    raw[nraw, 0] = last
                    raw[nraw, 1] = prev_m + 1
                    nraw += 1
                    last = prev_next if prev_next >= 0 else prev_m + 1
            if i == n:
                break
            prev_m = i
            prev_start = start
            prev_stop = i
            prev_ae = ae
            prev_next = nx
        i += 1
    # final slice ends at the text without trailing whitespace
    end = n
    while end > 0 and (flags[cps[end - 1]] & 2) != 0:
        end -= 1
    raw[nraw, 0] = last
    raw[nraw, 1] = end
    nraw += 1
    k = 0
    shift = 0
    for r in range(nraw):
        s = raw[r, 0] + shift
        e = raw[r, 1]
        if r + 1 == nraw:
            if s < e:
                out[k, 0] = s
                out[k, 1] = e
                k += 1
            continue
        s2 = raw[r + 1, 0]
        e2 = raw[r + 1, 1]
        mlen = 0
        mend = 0
        p = s2
        while p < e2 and (punct_class(punct, cps[p]) & 4) != 0:
            p += 1
            # lazy: the shortest run of closers followed by whitespace, "--" or the end
            if p < e2 and (flags[cps[p]] & 2) != 0:
                q = p
                while q < e2 and (flags[cps[q]] & 2) != 0:
                    q += 1
                mlen = p - s2
                mend = q - s2
                break
            if p + 1 < e2 and cps[p] == 45 and cps[p + 1] == 45:
                mlen = p - s2
                mend = mlen
                break
            if p == e2:
                mlen = p - s2
                mend = mlen
                break
        if mlen > 0:
            out[k, 0] = s
            out[k, 1] = s2 + mlen
            k += 1
            shift = mend
        else:
            shift = 0
            if s < e:
                out[k, 0] = s
                out[k, 1] = e
                k += 1
    return k


@parallel_kernel()
def _spans_many(cps, starts, ends, flags, lower, punct, rec, vcps, coll, num_id, rows, out, counts, n_chunks):
    """Spans of every text; the texts are cut into ``n_chunks`` runs (one per thread), each
    with scratch arrays sized for its longest text and reused from text to text."""
    nt = starts.shape[0]
    for c in prange(n_chunks):
        lo = nt * c // n_chunks
        hi = nt * (c + 1) // n_chunks
        m = 2
        for t in range(lo, hi):
            m = max(m, ends[t] - starts[t] + 2)
        raw = np.empty((m, 2), dtype=np.int64)
        ts = np.empty(m, dtype=np.int64)
        te = np.empty(m, dtype=np.int64)
        tid = np.empty(m, dtype=np.int64)
        bits = np.empty((4, m), dtype=np.bool_)
        for t in range(lo, hi):
            a = starts[t]
            b = ends[t]
            counts[t] = _spans_one(cps[a:b], flags, lower, punct, rec, vcps, coll, num_id,
                                   out[rows[t]:rows[t] + (b - a) + 1], raw, ts, te, bits, tid)


def run_spans(texts: list[str]):
    """Encode ``texts`` and run the kernel: ``(cps, starts, ends, spans, rows, counts)``;
    text ``t``'s spans are ``spans[rows[t]:][:counts[t]]``, ``counts[t] < 0`` where the
    kernel defers to the reference."""
    flags, lower = tables()
    rec, vcps, coll, num_id, punct = model_arrays()
    cps, starts, ends = encode_texts(texts)
    rows = np.zeros(len(texts), dtype=np.int64)  # a text of n code points has n + 1 rows
    if len(texts) > 1:
        np.cumsum(ends[:-1] - starts[:-1] + 1, out=rows[1:])
    out = np.empty((cps.shape[0] + len(texts) + 1, 2), dtype=np.int64)
    counts = np.empty(len(texts), dtype=np.int64)
    _spans_many(cps, starts, ends, flags, lower, punct, rec, vcps, coll, num_id, rows, out, counts,
                thread_runs(len(texts), cps.shape[0]))
    return cps, starts, ends, out, rows, counts


def sentence_spans_batch(texts: list[str]) -> list[list[tuple[int, int]]]:
    """``sentence_spans_ref`` of every text (numba, parallel over texts)."""
    if not texts:
        return []
    return in_slices(texts, _spans_slice)


def _spans_slice(texts: list[str]) -> list[list[tuple[int, int]]]:
    _, _, _, out, rows, counts = run_spans(texts)
    res = []
    for t, c in enumerate(counts.tolist()):
        if c < 0:
            res.append(sentence_spans_ref(texts[t]))
        else:
            base = int(rows[t])
            res.append([(int(a), int(b)) for a, b in out[base:base + c].tolist()])
    return res


def count_sentences_batch(texts: list[str]) -> np.ndarray:
    """Number of Punkt sentences of every text."""
    if not texts:
        return np.zeros(0, dtype=np.int64)
    return in_slices(texts, _count_slice)


def _count_slice(texts: list[str]) -> np.ndarray:
    counts = run_spans(texts)[-1]
    for t in np.nonzero(counts < 0)[0].tolist():
        counts[t] = len(sentence_spans_ref(texts[t]))
    return counts
