"""Case-insensitive search of ASCII literals in ASCII texts (numba).

The keyword checks ask three questions of a lower-case ASCII word ``w`` in a text ``t``,
all about ``t.lower()``:

- ANY: ``w in t.lower()``;
- COUNT: ``t.lower().count(w)`` (non-overlapping matches, left to right);
- WHOLE: some match of ``w`` has a word boundary (``re``'s ``\\b``) on both sides, as
  ``keywords.has_whole_word`` decides.

For ASCII text, lower-casing maps A-Z to a-z and nothing else, so the kernel compares
``c | 32`` for letters and ``c`` otherwise, on the text's bytes. The scan tests 32
positions at a time without a branch (the first two characters of ``w``, which the
compiler turns into vector compares) and looks closer only at blocks that hold a
candidate.
"""

from __future__ import annotations

import numpy as np
from numba import njit

ANY, COUNT, WHOLE = 0, 1, 2
BLOCK = 32


@njit(cache=True, inline="always")
def _low(c):
    c = np.uint32(c)
    return c | (np.uint32(c - np.uint32(65) < np.uint32(26)) << np.uint32(5))


@njit(cache=True, inline="always")
def _is_w(c):
    # re's \w on an ASCII character: a letter, a digit or "_"
    c = np.uint32(c)
    return ((c | np.uint32(32)) - np.uint32(97) < np.uint32(26)) | (c - np.uint32(48) < np.uint32(10)) | (c == 95)


@njit(cache=True, inline="always")
def _match_at(cps, i, word, ws, m):
    for q in range(1, m):
        if _low(cps[i + q]) != word[ws + q]:
            return False
    return True


@njit(cache=True)
def _one(cps, a, b, word, ws, m, mode):
    """The answer for ``word[ws:ws + m]`` (m >= 1) in ``cps[a:b]``."""
    last = b - m  # the last position a match can start at
    if last < a:
        return 0
    w0 = np.uint32(word[ws])
    w1 = np.uint32(word[ws + 1]) if m > 1 else np.uint32(0)
    first_w = _is_w(w0)
    last_w = _is_w(word[ws + m - 1])
    n = 0
    nxt = a  # COUNT: the first position a new match may start at
    i = a
    while i <= last:
        hi = last + 1
        if i + BLOCK + 1 <= b:  # a whole block (c[q + 1] readable): any candidate in it?
            hit = False
            if m > 1:
                for q in range(i, i + BLOCK):
                    hit |= (_low(cps[q]) == w0) & (_low(cps[q + 1]) == w1)
            else:
                for q in range(i, i + BLOCK):
                    hit |= _low(cps[q]) == w0
            if not hit:
                i += BLOCK
                continue
            hi = min(i + BLOCK, last + 1)
        for k in range(i, hi):
            if _low(cps[k]) != w0 or not _match_at(cps, k, word, ws, m):
                continue
            if mode == ANY:
                return 1
            if mode == COUNT:
                if k >= nxt:
                    n += 1
                    nxt = k + m
            else:  # WHOLE
                before = k > a and _is_w(cps[k - 1])
                after = k + m < b and _is_w(cps[k + m])
                if before != first_w and after != last_w:
                    return 1
        i = hi
    return n


@njit(cache=True)
def _literal_hits(cps, starts, ends, words, wstarts, wends, pair_text, mode):
    out = np.empty(pair_text.shape[0], dtype=np.int64)
    for p in range(pair_text.shape[0]):
        t = pair_text[p]
        out[p] = _one(cps, starts[t], ends[t], words, wstarts[p], wends[p] - wstarts[p], mode)
    return out


def literal_hits(texts: list[str], words: list[list[str]], mode: int) -> list[list[int]]:
    """``[[answer(w, t) for w in ws] for t, ws in zip(texts, words)]`` (see the module
    docstring), for ASCII ``texts`` and non-empty lower-case ASCII words."""
    from ifrl.constraints.text.unicode import encode_texts

    if not texts:
        return []
    cps, starts, ends = encode_texts(texts)
    if cps.dtype != np.uint8:
        raise ValueError("literal_hits takes ASCII texts only")
    flat = [w for ws in words for w in ws]
    if not flat:
        return [[] for _ in texts]
    raw = "".join(flat).encode("ascii")
    lens = np.fromiter(map(len, flat), dtype=np.int64, count=len(flat))
    if not lens.all():
        raise ValueError("literal_hits takes non-empty words only")
    wends = np.cumsum(lens)
    counts = np.fromiter(map(len, words), dtype=np.int64, count=len(words))
    pair_text = np.repeat(np.arange(len(texts), dtype=np.int64), counts)
    res = _literal_hits(cps, starts, ends, np.frombuffer(raw, dtype=np.uint8), wends - lens, wends, pair_text,
                        mode).tolist()
    out = []
    k = 0
    for n in counts.tolist():
        out.append(res[k:k + n])
        k += n
    return out
