"""numba kernel for the keyword ids: ASCII literals searched in lower-cased text.

One call checks every (text, word list) pair of a batch, for the three ways IFEval uses
a keyword: ``EXISTS`` (every word occurs), ``COUNT`` (non-overlapping occurrences of one
word against a relation, as ``str.count``) and ``WHOLE`` (no word occurs with a
``\\b`` on both sides). The words are lower-case ASCII; the text is lower-cased on the
fly, ASCII letters only: the caller passes only texts whose lower-casing maps no other
code point to ASCII (``keywords.ascii_fold_safe``), so every other code point is a
mismatch, as it is in ``text.lower()``. Word boundaries read the ``\\w`` class of the
code point itself (lower-casing never changes it, tests/constraints check this).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ifrl.constraints.text.unicode import encode_texts, in_slices, parallel_kernel, tables

EXISTS, COUNT, WHOLE = 0, 1, 2


BLOCK = 64  # positions per block of the vectorised filter in ``_find``
NON_ASCII = 128  # the lower-cased byte of every non-ASCII code point: matches no word byte


@njit(cache=True)
def _lower_bytes(cps):
    # branch-free, so LLVM vectorises it: ASCII lower-cased, everything else NON_ASCII
    out = np.empty(cps.shape[0], dtype=np.uint8)
    for i in range(cps.shape[0]):
        c = np.uint32(cps[i])
        up = (c - np.uint32(65)) < np.uint32(26)
        out[i] = np.uint8(min(c + np.uint32(32) * up, np.uint32(NON_ASCII)))
    return out


@njit(cache=True, inline="always")
def _matches(low, p, wb, s, m):
    for j in range(m):
        if low[p + j] != wb[s + j]:
            return False
    return True


@njit(cache=True, inline="always")
def _find(low, i, b, wb, s, m):
    """First position >= i where the word ``wb[s : s + m]`` starts in ``low[:b]``, or -1.

    Each block of BLOCK start positions is first filtered in one branch-free pass that
    LLVM vectorises (it needs unsigned indices: a signed one carries numba's
    negative-index wrap, which stops it): a start is a candidate when the word's first,
    second and last bytes are in place (for short words these are the same byte). Only
    a block with a candidate is then scanned start by start."""
    if m == 0:
        return i
    last = b - m + 1  # one past the last possible start
    d1 = min(1, m - 1)
    d2 = m - 1
    c0, c1, c2 = wb[s], wb[s + d1], wb[s + d2]
    u1, u2 = np.uint64(d1), np.uint64(d2)
    lo = i
    while lo + BLOCK <= last:
        base = np.uint64(lo)
        hits = 0
        for k in range(BLOCK):
            q = base + np.uint64(k)
            if low[q] == c0 and low[q + u1] == c1 and low[q + u2] == c2:
                hits += 1
        if hits:
            for p in range(lo, lo + BLOCK):
                if low[p] == c0 and low[p + d2] == c2 and _matches(low, p, wb, s, m):
                    return p
        lo += BLOCK
    for p in range(lo, last):
        if low[p] == c0 and low[p + d2] == c2 and _matches(low, p, wb, s, m):
            return p
    return -1


@njit(cache=True, inline="always")
def _whole_word(cps, low, a, b, wb, s, m, flags):
    """Some occurrence of the word in ``[a, b)`` has a word boundary before and after it
    (the text's ends count as non-word characters)."""
    first = (flags[wb[s]] & 1) != 0
    last = (flags[wb[s + m - 1]] & 1) != 0
    p = _find(low, a, b, wb, s, m)
    while p >= 0:
        before = p > a and (flags[cps[p - 1]] & 1) != 0
        after = p + m < b and (flags[cps[p + m]] & 1) != 0
        if before != first and after != last:
            return True
        p = _find(low, p + 1, b, wb, s, m)
    return False


@parallel_kernel()
def _keyword_checks(cps, starts, ends, flags, code, wb, woff, out):
    low = _lower_bytes(cps)
    for c in prange(starts.shape[0]):
        a = starts[c]
        b = ends[c]
        k = code[c] & 3
        pos = woff[c]
        if k == EXISTS:
            ok = True
            while pos < woff[c + 1]:
                m = np.int64(wb[pos])
                if _find(low, a, b, wb, pos + 1, m) < 0:
                    ok = False
                    break
                pos += 1 + m
            out[c] = ok
        elif k == COUNT:
            m = np.int64(wb[pos])
            s = pos + 1
            n = 0
            p = _find(low, a, b, wb, s, m)
            while p >= 0:
                n += 1
                p = _find(low, p + m, b, wb, s, m)
            need = code[c] >> 3
            out[c] = n < need if (code[c] >> 2) & 1 else n >= need
        else:
            hit = False
            while pos < woff[c + 1]:
                m = np.int64(wb[pos])
                if _whole_word(cps, low, a, b, wb, pos + 1, m, flags):
                    hit = True
                    break
                pos += 1 + m
            out[c] = not hit


MAX_WORD = 255  # words are packed behind a one-byte length
MAX_NEED = 1 << 40  # a COUNT's threshold is capped here (no text holds that many words)


def pack_words(words) -> bytes | None:
    """``words`` (lower-case ASCII) as the kernel reads them: each behind its length in one
    byte; None when one is longer than MAX_WORD."""
    if any(len(w) > MAX_WORD for w in words):
        return None
    return b"".join(bytes((len(w),)) + w.encode("ascii") for w in words)


def check_code(kind: int, need: int = 0, less: bool = False) -> int:
    """One check's kind and, for ``COUNT``, its relation and threshold, in one integer."""
    return kind | int(less) << 2 | min(need, MAX_NEED) << 3


def keyword_checks(texts: list[str], codes: list[int], packed: list[bytes]) -> list[bool]:
    """One verdict per text: the check ``codes[i]`` (``check_code``) with the words
    ``packed[i]`` (``pack_words``) on ``texts[i]``. ``EXISTS``: every word occurs (no words:
    true). ``COUNT``: one non-empty word, true when its count is ``< need`` if ``less``,
    else ``>= need``. ``WHOLE``: non-empty words, true when none of them occurs as a whole
    word."""
    return in_slices(texts, _slice, codes, packed)


def _slice(texts, codes, packed):
    flags, _ = tables()
    cps, starts, ends = encode_texts(texts)
    n = len(texts)
    wb = np.frombuffer(b"".join(packed) or b"\0", dtype=np.uint8)
    woff = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, packed), dtype=np.int64, count=n), out=woff[1:])
    out = np.empty(n, dtype=np.bool_)
    _keyword_checks(cps, starts, ends, flags, np.array(codes, dtype=np.int64), wb, woff, out)
    return out.tolist()
