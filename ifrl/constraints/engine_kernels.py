"""numba kernels for the counting checks, over UTF-32 code points (``prange`` over texts).

Each kernel reproduces one IFEval regular expression exactly, using the code-point
class table from ``text.unicode`` for ``\\w`` / ``\\s``.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ifrl.constraints.text.unicode import encode, tables


@njit(cache=True, parallel=True)
def _count_words(cps, offsets, flags):
    # len(re.findall(r"\w+", text)): maximal runs of word characters
    nt = offsets.shape[0] - 1
    out = np.zeros(nt, dtype=np.int64)
    for t in prange(nt):
        n = 0
        inword = False
        for i in range(offsets[t], offsets[t + 1]):
            w = (flags[cps[i]] & 1) != 0
            if w and not inword:
                n += 1
            inword = w
        out[t] = n
    return out


@njit(cache=True, parallel=True)
def _count_bullets(cps, offsets, flags):
    # len(re.findall(r"^\s*\*[^\*].*$", t, re.M)) + len(re.findall(r"^\s*-.*$", t, re.M))
    nt = offsets.shape[0] - 1
    out = np.zeros(nt, dtype=np.int64)
    for t in prange(nt):
        a = offsets[t]
        b = offsets[t + 1]
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


def count_words(texts: list[str]) -> np.ndarray:
    flags, _ = tables()
    cps, off = encode(texts)
    return _count_words(cps, off, flags)


def count_bullets(texts: list[str]) -> np.ndarray:
    flags, _ = tables()
    cps, off = encode(texts)
    return _count_bullets(cps, off, flags)
