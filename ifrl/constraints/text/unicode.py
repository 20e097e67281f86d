"""Per-code-point class tables that mirror CPython's own string predicates.

The numba kernels work on UTF-32 code points; to keep Python's semantics exactly
(``re``'s ``\\w``/``\\s``/``\\d`` on str patterns, ``str.isupper``/``islower``) they look
the class of each code point up in a table built from those very predicates. Building
the table walks all 1,114,112 code points once (~0.5 s), so it is cached on disk keyed
by the Unicode database version.
"""

from __future__ import annotations

import os
import sys
import unicodedata
from functools import lru_cache

import numpy as np

WORD = 1  # re \w: str.isalnum() or "_"
SPACE = 2  # re \s and str.isspace()
UPPER = 4  # Py_UNICODE_ISUPPER
LOWER = 8  # Py_UNICODE_ISLOWER
TITLE = 16  # Py_UNICODE_ISTITLE (title-case letters such as U+01C5)
DIGIT = 32  # re \d: str.isdecimal()
ASCII_WS = 64  # string.whitespace (punkt's "last whitespace" search is ASCII-only)
LOWER_MULTI = 128  # str.lower() of this code point is not a single code point

N_CODEPOINTS = 0x110000


def _cache_dir() -> str:
    base = os.environ.get("IFRL_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "ifrl")
    os.makedirs(base, exist_ok=True)
    return base


def _build() -> tuple[np.ndarray, np.ndarray]:
    flags = np.zeros(N_CODEPOINTS, dtype=np.uint8)
    lower = np.arange(N_CODEPOINTS, dtype=np.int32)
    ascii_ws = set(" \t\n\r\x0b\x0c")
    for cp in range(N_CODEPOINTS):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        c = chr(cp)
        f = 0
        if c.isalnum() or c == "_":
            f |= WORD
        if c.isspace():
            f |= SPACE
        if c.isupper():
            f |= UPPER
        elif c.islower():
            f |= LOWER
        elif c.istitle():
            f |= TITLE
        if c.isdecimal():
            f |= DIGIT
        if c in ascii_ws:
            f |= ASCII_WS
        lc = c.lower()
        if len(lc) != 1:
            f |= LOWER_MULTI
        else:
            lower[cp] = ord(lc)
        flags[cp] = f
    return flags, lower


@lru_cache(maxsize=None)
def tables() -> tuple[np.ndarray, np.ndarray]:
    """Return ``(flags[uint8, 0x110000], simple_lower[int32, 0x110000])``."""
    tag = f"unicode_tables_py{sys.version_info[0]}{sys.version_info[1]}_ucd{unicodedata.unidata_version}.npz"
    path = os.path.join(_cache_dir(), tag)
    if os.path.exists(path):
        try:
            with np.load(path) as z:
                return z["flags"], z["lower"]
        except Exception:  # a torn cache file is rebuilt, never trusted
            pass
    flags, lower = _build()
    tmp = f"{path}.{os.getpid()}.tmp.npz"
    np.savez(tmp, flags=flags, lower=lower)
    os.replace(tmp, path)
    return flags, lower


def encode_texts(texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The code points of ``texts`` in one array: ``(codepoints_C, starts_N, ends_N)``,
    text ``i`` being ``codepoints[starts[i]:ends[i]]``, the texts end to end in order.

    When every text is ASCII the array is their bytes as they are (read-only ``uint8``,
    no copy, a quarter of the memory the kernels then read); the kernels are compiled for
    both widths (numba promotes either to 64 bits in arithmetic, so they compute the
    same). Otherwise it is UTF-32 (``uint32``), copied by numpy from the joined string's
    code points (lone surrogates included) in one widening step: CPython's UTF-32
    encoder is a character loop, several times slower."""
    n = len(texts)
    lens = np.fromiter(map(len, texts), dtype=np.int64, count=n)
    ends = np.cumsum(lens)
    joined = "".join(texts)
    if joined.isascii():  # str.isascii reads a flag: no per-character work
        cps = np.frombuffer(joined.encode("ascii"), dtype=np.uint8)
    else:
        cps = np.array([joined]).view(np.uint32)  # a 1-element '<U{len}' array, read as its code points
    return cps, ends - lens, ends


# Below this many code points a batch runs on one thread (``ParallelKernel``): starting an
# OpenMP parallel region (and its spinning workers) costs more than the work itself.
PARALLEL_MIN_CODEPOINTS = 1_000_000


def runs_plain(n_codepoints: int) -> bool:
    """Whether a batch of ``n_codepoints`` runs the plain twin of a ``ParallelKernel``, on
    one run of texts (``thread_runs``)."""
    return n_codepoints < PARALLEL_MIN_CODEPOINTS


class ParallelKernel:
    """A ``prange`` kernel compiled twice: with ``parallel=True``, and as a plain loop (numba
    reads ``prange`` as ``range``) for batches below PARALLEL_MIN_CODEPOINTS. The plain one
    starts no parallel region and reads no thread count, and numba optimises its loop
    better: a small batch gains a few microseconds a call and up to 15% of the loop. The
    kernel's first argument is the batch's code points, which picks the twin."""

    def __init__(self, fn, options: dict):
        import types

        from numba import njit

        self.parallel = njit(cache=True, parallel=True, **options)(fn)
        # a function of its own (its own name, so its own cache file): numba's cache key
        # does not hold the parallel flag
        twin = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__ + "_serial", fn.__defaults__,
                                  fn.__closure__)
        twin.__qualname__ = fn.__qualname__ + "_serial"
        twin.__module__ = fn.__module__
        twin.__doc__ = fn.__doc__
        self.serial = njit(cache=True, **options)(twin)
        self.__doc__ = fn.__doc__
        self.__name__ = fn.__name__

    def __call__(self, cps, *args):
        kernel = self.serial if runs_plain(cps.shape[0]) else self.parallel
        return kernel(cps, *args)


def parallel_kernel(**options):
    """Decorator: ``ParallelKernel`` of the function, with numba ``options`` besides
    ``cache`` and ``parallel``."""
    return lambda fn: ParallelKernel(fn, options)


def thread_runs(n_texts: int, n_codepoints: int) -> int:
    """How many runs a kernel cuts ``n_texts`` texts into: one per numba thread (at most
    one per text), each with its own scratch arrays; one below PARALLEL_MIN_CODEPOINTS,
    where the plain twin runs."""
    if runs_plain(n_codepoints):
        return 1
    import numba

    return max(1, min(n_texts, numba.get_num_threads()))


# One thread works through a large batch in slices of about this many code points: the
# encoded slice and the kernel's scratch stay in cache and are reused, where one large
# buffer would be fresh memory (page faults) read back from DRAM.
SLICE_CODEPOINTS = 1 << 18


def in_slices(texts: list, fn, *cols):
    """``fn(texts, *cols)`` over consecutive slices of ``texts`` (and of the parallel
    sequences ``cols``), results concatenated (numpy arrays or lists). Slices apply on
    one thread only; with more threads the batch stays whole up to 4x the parallel
    threshold, so the kernels still split it over the threads."""
    total = sum(map(len, texts))
    if total <= SLICE_CODEPOINTS:  # whole at any thread count (the smaller limit)
        return fn(texts, *cols)
    import numba

    limit = SLICE_CODEPOINTS if numba.get_num_threads() == 1 else 4 * PARALLEL_MIN_CODEPOINTS
    if total <= limit:
        return fn(texts, *cols)
    parts = []
    lo = 0
    n = 0
    for i, t in enumerate(texts):
        n += len(t)
        if n >= limit or i == len(texts) - 1:
            parts.append(fn(texts[lo:i + 1], *(c[lo:i + 1] for c in cols)))
            lo = i + 1
            n = 0
    if isinstance(parts[0], np.ndarray):
        return np.concatenate(parts)
    return [x for part in parts for x in part]
