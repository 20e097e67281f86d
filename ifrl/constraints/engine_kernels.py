"""numba kernels for the counting checks, over UTF-32 code points (``prange`` over texts).

Each kernel reproduces one IFEval regular expression exactly, using the code-point
class table from ``text.unicode`` for ``\\w`` / ``\\s``.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ifrl.constraints.text.punkt_fast import punct_class
from ifrl.constraints.text.unicode import encode_texts, in_slices, parallel_kernel, tables


def _pack(w: str) -> int:
    v = 0
    for ch in w:
        v = v * 128 + ord(ch)
    return v


_W_GIMME, _W_GONNA, _W_GOTTA, _W_LEMME, _W_WANNA, _W_CANNOT = (
    _pack("gimme"), _pack("gonna"), _pack("gotta"), _pack("lemme"), _pack("wanna"), _pack("cannot"))


@parallel_kernel()
def _count_words(cps, starts, ends, flags):
    # len(re.findall(r"\w+", text)): maximal runs of word characters
    nt = starts.shape[0]
    out = np.zeros(nt, dtype=np.int64)
    for t in prange(nt):
        n = 0
        prev = 0
        for i in range(starts[t], ends[t]):  # branch-free: count the starts of word runs
            w = flags[cps[i]] & 1
            n += w & (prev ^ 1)
            prev = w
        out[t] = n
    return out


@parallel_kernel()
def _count_bullets(cps, starts, ends, flags):
    # len(re.findall(r"^\s*\*[^\*].*$", t, re.M)) + len(re.findall(r"^\s*-.*$", t, re.M))
    nt = starts.shape[0]
    out = np.zeros(nt, dtype=np.int64)
    for t in prange(nt):
        a = starts[t]
        b = ends[t]
        total = 0
        for which in range(2):
            p = a
            while p < b:
                if p == a or cps[p - 1] == 10:
                    q = p
                    while q < b and (flags[cps[q]] & 2) != 0:
                        q += 1
                    ok = False
                    if which == 0:
                        if q + 1 < b and cps[q] == 42 and cps[q + 1] != 42:
                            ok = True
                            e = q + 2
                    else:
                        if q < b and cps[q] == 45:
                            ok = True
                            e = q + 1
                    if ok:
                        while e < b and cps[e] != 10:
                            e += 1
                        total += 1
                        p = e if e > p else p + 1
                        continue
                p += 1
        out[t] = total
    return out


@njit(cache=True)
def _blank(cps, a, b, flags):
    """cps[a:b] is all whitespace (``str.isspace`` of a non-empty slice, or empty)."""
    for k in range(a, b):
        if (flags[cps[k]] & 2) == 0:
            return False
    return True


@njit(cache=True)
def _count_highlights(cps, starts, ends, flags, need):
    # detectable_format.highlight_count, stopping once need[t] spans are found, by scanning:
    # r"\*[^\n\*]*\*" pairs each "*" with the next one when no line break comes between
    # (the search then resumes after the closing star, else at that next star);
    # r"\*\*[^\n\*]*\*\*" needs "**", text without "*" or a line break, and "**" again,
    # resuming one character on when that fails. Spans with blank content do not count.
    nt = starts.shape[0]
    out = np.zeros(nt, dtype=np.int64)
    for t in range(nt):
        a = starts[t]
        b = ends[t]
        nd = need[t]
        n = 0
        s = a
        while s < b and cps[s] != 42:
            s += 1
        while s < b:
            k = s + 1
            nl = False
            while k < b and cps[k] != 42:
                if cps[k] == 10:
                    nl = True
                k += 1
            if k >= b:
                break
            if nl:  # a line break first: this star may open the next span
                s = k
                continue
            if k > s + 1 and not _blank(cps, s + 1, k, flags):
                n += 1
                if n >= nd:
                    break
            s = k + 1
            while s < b and cps[s] != 42:
                s += 1
        if n < nd:
            s = a
            while s + 1 < b and not (cps[s] == 42 and cps[s + 1] == 42):
                s += 1
            if s + 1 >= b:
                s = b
            while s < b:
                k = s + 2
                while k < b and cps[k] != 42:
                    k += 1
                if k >= b:
                    break
                nl = False
                for q in range(s + 2, k):
                    if cps[q] == 10:
                        nl = True
                        break
                if k + 1 < b and cps[k + 1] == 42 and not nl:
                    if k > s + 2 and not _blank(cps, s + 2, k, flags):
                        n += 1
                        if n >= nd:
                            break
                    s = k + 2
                else:
                    s += 1
                while s + 1 < b and not (cps[s] == 42 and cps[s + 1] == 42):
                    s += 1
                if s + 1 >= b:
                    s = b
        out[t] = n
    return out


def count_highlights_batch(texts: list[str], need: list[int]) -> np.ndarray:
    """``min(detectable_format.highlight_count(t), n)`` for every text and its ``n``."""
    return in_slices(texts, _highlights_slice, need)


def _highlights_slice(texts, need):
    flags, _ = tables()
    cps, starts, ends = encode_texts(texts)
    return _count_highlights(cps, starts, ends, flags, np.asarray(need, dtype=np.int64))


def count_words(texts: list[str]) -> np.ndarray:
    return in_slices(texts, lambda t: _run_count(t, _count_words))


def count_bullets(texts: list[str]) -> np.ndarray:
    return in_slices(texts, lambda t: _run_count(t, _count_bullets))


def _run_count(texts, kernel):
    flags, _ = tables()
    cps, starts, ends = encode_texts(texts)
    return kernel(cps, starts, ends, flags)


@njit(cache=True, inline="always")
def _is_letter(c):
    return (65 <= c <= 90) or (97 <= c <= 122)


@njit(cache=True, inline="always")
def _is_w(c):
    return _is_letter(c) or (48 <= c <= 57) or c == 95


@njit(cache=True, inline="always")
def _fused(cps, s, e):
    """Does a word-character run of cps[s:e] spell a fused word (cannot, gonna, ...)?"""
    i = s
    while i < e:
        if not _is_w(cps[i]):
            i += 1
            continue
        j = i
        while j < e and _is_w(cps[j]):
            j += 1
        L = j - i
        if L == 5 or L == 6:
            w = 0
            for k in range(i, j):
                c = cps[k]
                if 65 <= c <= 90:
                    c += 32
                w = w * 128 + c
            # "gimme" "gonna" "gotta" "lemme" "wanna" "cannot" packed base 128
            if w in (_W_GIMME, _W_GONNA, _W_GOTTA, _W_LEMME, _W_WANNA, _W_CANNOT):
                return True
        i = j
    return False


@njit(cache=True, inline="always")
def _chunk_capitals(cps, s, e, flags):
    """All-capital Treebank tokens of the chunk cps[s:e] (no whitespace inside), or -1
    when only the full rules can tell. Mirrors ``treebank._chunk_capitals``."""
    has_upper = False
    ascii_ = True
    for k in range(s, e):
        c = cps[k]
        if c >= 128:
            ascii_ = False
        if flags[c] & 4:
            has_upper = True
    if not has_upper:
        return 0
    if not ascii_:
        return -1
    f = -1
    last = -1
    for k in range(s, e):
        if _is_letter(cps[k]):
            if f < 0:
                f = k
            last = k
    # simple: letters joined by word characters or a lone '-' / '.'
    simple = True
    for k in range(f, last):
        c = cps[k]
        if c == 45 or c == 46:
            d = cps[k + 1]
            if d == 45 or d == 46:
                simple = False
                break
        elif not _is_w(c):
            simple = False
            break
    if simple:
        if _fused(cps, s, e):
            return -1
        for k in range(f, last + 1):
            if 97 <= cps[k] <= 122:
                return 0
        return 1
    # clitic: letters ' letters, at the end of the chunk
    if not _is_letter(cps[e - 1]):
        return -1
    ap = -1
    for k in range(f, e):
        c = cps[k]
        if c == 39:
            if ap >= 0:
                return -1
            ap = k
        elif not _is_letter(c):
            return -1
    if ap < 0 or ap == f or ap == e - 1:
        return -1
    la = ap - f
    lb = e - ap - 1
    # fused words with an apostrophe (d'ye, more'n) or before it
    if _fused(cps, f, ap):
        return -1
    a0 = cps[f] | 32
    if la == 1 and a0 == 100 and lb == 2 and (cps[ap + 1] | 32) == 121 and (cps[ap + 2] | 32) == 101:
        return -1
    if la == 4 and lb == 1 and (cps[ap + 1] | 32) == 110:
        if (cps[f] | 32) == 109 and (cps[f + 1] | 32) == 111 and (cps[f + 2] | 32) == 114 and (cps[f + 3] | 32) == 101:
            return -1
    a_up = True
    for k in range(f, ap):
        if 97 <= cps[k] <= 122:
            a_up = False
    b_up = True
    for k in range(ap + 1, e):
        if 97 <= cps[k] <= 122:
            b_up = False
    b0 = cps[ap + 1]
    clitic = False
    if lb == 1 and (b0 == 115 or b0 == 83 or b0 == 109 or b0 == 77 or b0 == 100 or b0 == 68):
        clitic = True
    elif lb == 2:
        b1 = cps[ap + 2]
        if (b0 == 108 and b1 == 108) or (b0 == 76 and b1 == 76) or (b0 == 114 and b1 == 101) or \
                (b0 == 82 and b1 == 69) or (b0 == 118 and b1 == 101) or (b0 == 86 and b1 == 69):
            clitic = True
    if clitic:
        return (1 if a_up else 0) + (1 if b_up else 0)
    if lb == 1 and ((cps[ap - 1] == 110 and b0 == 116) or (cps[ap - 1] == 78 and b0 == 84)):
        head_up = la > 1
        for k in range(f, ap - 1):
            if 97 <= cps[k] <= 122:
                head_up = False
        return (1 if head_up else 0) + (1 if b0 == 84 else 0)
    return 1 if (a_up and b_up) else 0


@njit(cache=True, inline="always")
def _sentence_capitals(cps, base, n, a, b, flags):
    """Capital tokens of the sentence cps[base + a: base + b] of a text of n code points,
    or -1 when it needs the full rules. Only the whitespace-delimited chunks that hold an
    upper-case letter are looked at: ``_chunk_capitals`` is 0 on the others, so the scan
    skips to the next upper-case letter and widens it to its chunk."""
    cnt = 0
    i = a
    while i < b:
        stop = b
        if i + 16 <= b:  # 16 code points tested at once, without a branch: any A-Z or non-ASCII?
            hit = False
            for q in range(base + i, base + i + 16):
                c = np.uint32(cps[q])
                hit |= (c - np.uint32(65) < np.uint32(26)) | (c >= np.uint32(128))
            if not hit:
                i += 16
                continue
            stop = i + 16
        while i < stop and (flags[cps[base + i]] & 4) == 0:
            i += 1
        if i == stop:
            continue
        s = i  # the chunk holding i: back to the whitespace (or a) before it
        while s > a and (flags[cps[base + s - 1]] & 2) == 0:
            s -= 1
        j = i + 1
        while j < b and (flags[cps[base + j]] & 2) == 0:
            j += 1
        crosses = (s == a and a > 0 and (flags[cps[base + a - 1]] & 2) == 0) or \
                  (j == b and b < n and (flags[cps[base + b]] & 2) == 0)
        c = _chunk_capitals(cps, base + s, base + j, flags)
        if c != 0 and crosses:
            c = -1
        if c < 0:
            return -1
        cnt += c
        i = j
    return cnt


@parallel_kernel()
def _capital_sentences(cps, starts, ends, spans, span_off, flags, out):
    # out[k]: capital tokens of sentence k, or -1 when it needs the full rules
    nt = starts.shape[0]
    for t in prange(nt):
        base = starts[t]
        n = ends[t] - base
        for k in range(span_off[t], span_off[t + 1]):
            out[k] = _sentence_capitals(cps, base, n, spans[k, 0], spans[k, 1], flags)


@parallel_kernel()
def _capital_texts(cps, starts, ends, spans, rows, counts, flags, out):
    # out[t]: capital tokens of text t from its Punkt spans (spans[rows[t]:][:counts[t]], as
    # punkt_fast writes them), or -1 when a sentence needs the full rules or Punkt deferred
    nt = starts.shape[0]
    for t in prange(nt):
        base = starts[t]
        n = ends[t] - base
        total = 0
        if counts[t] < 0:
            total = -1
        for k in range(rows[t], rows[t] + max(counts[t], 0)):
            c = _sentence_capitals(cps, base, n, spans[k, 0], spans[k, 1], flags)
            if c < 0:
                total = -1
                break
            total += c
        out[t] = total


def capital_counts(texts: list[str], spans: list[list[tuple[int, int]]]) -> list[int]:
    """All-capital ``word_tokenize`` tokens per text, given its Punkt spans."""
    from ifrl.constraints.text.treebank import treebank_tokens

    flags, _ = tables()
    cps, starts, ends = encode_texts(texts)
    span_off = np.zeros(len(texts) + 1, dtype=np.int64)
    np.cumsum([len(s) for s in spans], out=span_off[1:])
    flat = np.array([p for s in spans for p in s], dtype=np.int64).reshape(-1, 2)
    per = np.empty(flat.shape[0], dtype=np.int64)
    if flat.shape[0]:
        _capital_sentences(cps, starts, ends, flat, span_off, flags, per)
    out = []
    for t, text in enumerate(texts):
        n = 0
        for k in range(span_off[t], span_off[t + 1]):
            c = int(per[k])
            if c < 0:
                a, b = spans[t][k - span_off[t]]
                c = sum(1 for w in treebank_tokens(text[a:b]) if w.isupper())
            n += c
        out.append(n)
    return out


@parallel_kernel()
def _capital_whole(cps, starts, ends, punct, flags, out):
    # out[t]: capital tokens of text t counted over the whole text as one sentence, when no
    # sentence break can fall inside a whitespace-delimited chunk; -2 when one can (a
    # sentence end [.?!] followed by Punkt's non-word punctuation, or closing punctuation
    # followed by "--", which realignment splits from it); -1 when a chunk needs the full
    # rules.
    nt = starts.shape[0]
    for t in prange(nt):
        base = starts[t]
        n = ends[t] - base
        inside = False
        te = ends[t]
        i = base
        while i < te - 1 and not inside:  # the pairs (cps[k], cps[k + 1]), base <= k < te - 1
            hi = te - 1
            if i + 16 <= te - 1:  # 16 pairs tested at once, without a branch: any [.?!] first or "-" second?
                hit = False
                for q in range(i, i + 16):
                    c = cps[q]
                    hit |= (c == 46) | (c == 63) | (c == 33) | (cps[q + 1] == 45)
                if not hit:
                    i += 16
                    continue
                hi = i + 16
            for k in range(i, hi):
                c = cps[k]
                d = cps[k + 1]
                if c == 46 or c == 63 or c == 33:
                    if punct_class(punct, d) & 1:
                        inside = True
                        break
                elif d == 45 and (punct_class(punct, c) & 4) != 0 and k + 2 < te and cps[k + 2] == 45:
                    inside = True  # closers before "--" move to the sentence before the break
                    break
            i = hi
        out[t] = -2 if inside else _sentence_capitals(cps, base, n, 0, n, flags)


def capital_counts_batch(texts: list[str]) -> list[int]:
    """``capital_counts(texts, sentence_spans_batch(texts))`` over one encoding; texts the
    kernels cannot decide go through ``capital_counts`` one by one."""
    if not texts:
        return []
    return in_slices(texts, _capital_counts_slice)


def _capital_counts_slice(texts: list[str]) -> list[int]:
    """Punkt's sentences matter to the count only where a sentence break can fall inside
    a whitespace-delimited chunk: a break comes right after a [.?!] (moved past closing
    punctuation that whitespace follows), and a [.?!] is a break candidate only when
    whitespace or one of Punkt's non-word characters follows it; realignment then moves
    closing punctuation at the start of the next sentence back only when whitespace, "--"
    or the end follows it. Texts where no [.?!] is followed by a non-word character and
    no closer by "--" have every break on whitespace, so each chunk is counted whole
    wherever the breaks fall: they are counted as one sentence, without Punkt. The others
    go through Punkt's spans (``run_spans``)."""
    from ifrl.constraints.text.punkt_fast import model_arrays, run_spans, sentence_spans_batch

    flags, _ = tables()
    punct = model_arrays()[-1]
    cps, starts, ends = encode_texts(texts)
    per = np.empty(len(texts), dtype=np.int64)
    _capital_whole(cps, starts, ends, punct, flags, per)
    out = per.tolist()
    split = [t for t, c in enumerate(out) if c == -2]
    if split:
        sub = [texts[t] for t in split]
        cps, starts, ends, spans, rows, counts = run_spans(sub)
        per = np.empty(len(sub), dtype=np.int64)
        _capital_texts(cps, starts, ends, spans, rows, counts, flags, per)
        for t, c in zip(split, per.tolist()):
            out[t] = c
    for t in [t for t, c in enumerate(out) if c < 0]:
        out[t] = capital_counts([texts[t]], sentence_spans_batch([texts[t]]))[0]
    return out
