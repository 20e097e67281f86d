"""Language identification with ``langdetect`` semantics, seeded, in numba.

IFEval decides ``language:response_language`` and the English-case ids with
``langdetect.detect``: character 1-3-gram profiles of 55 languages scored by seven
randomised naive-Bayes trials. The draws come from Python's Mersenne Twister seeded
by ``DetectorFactory.seed``; we fix the seed to 0 (the official checker leaves it
unseeded, so its verdicts can flip between runs on ambiguous text).

The profiles, the per-character normaliser and the language order are taken from
the installed ``langdetect`` package (data, loaded at run time). The scoring loop is
re-implemented twice: ``detect_ref`` in plain Python (the oracle) and
``detect_batch`` in numba, which reads the same Mersenne Twister outputs (precomputed
from the same seed) and does the same floating-point operations in the same order, so
both give langdetect's answer bit for bit. That includes the normalising ``sum()``, whose
float algorithm changed in Python 3.12 (``COMPENSATED_SUM``).
"""

from __future__ import annotations

import random
import re
import sys
from functools import lru_cache

import numpy as np
from numba import njit, prange

from ifrl.constraints.text.prefetch import prefetch_row
from ifrl.constraints.text.unicode import LOWER, TITLE, UPPER, parallel_kernel, tables, thread_runs

SEED = 0
N_TRIAL = 7
ALPHA = 0.5
ALPHA_WIDTH = 0.05
ITERATION_LIMIT = 1000
PROB_THRESHOLD = 0.1
CONV_THRESHOLD = 0.99999
BASE_FREQ = 10000
MAX_TEXT = 10000

NO_FEATURES = -2  # langdetect raises LangDetectException("No features in text.")
UNKNOWN = -1  # no language above PROB_THRESHOLD ("unknown")
NOT_TARGET = -3  # target mode: provably not the target language
ROW = 56  # profile row width (55 languages, zero padded: 448 bytes, seven whole cache lines)
ROW_BYTES = ROW * 8
PREFETCH_AHEAD = 5  # the trials prefetch the profile rows of the draws this far past the next block
STREAM_WORDS = 1 << 16  # Mersenne Twister outputs precomputed for the numba trials
REDO = -4  # the precomputed outputs ran out: extend them and run the text again
CASE_FAILS = -5  # the text fails the case test asked with it (not detected)
REDO_EXACT = -6  # retiring languages could not be proven exact: run the text without it
REDO_TRIAL = -7  # a retired bound failed its check: go on from that trial without retiring
NEEDS_CLEAN = -8  # the text may hold a URL, an e-mail address or Vietnamese marks: clean it first
# Retired languages (``_trials`` with RETIRE_ON). Once a trial has run RETIRE_AFTER draws,
# a language whose normalised probability is below RETIRE_BELOW no longer changes
# langdetect's arithmetic unless it grows back, and left alone it would soon be subnormal.
# Its slot then holds an upper bound on its true value, scaled by RETIRE_SCALE (exact, and
# a normal double): the bound is multiplied by the same factors as the live values,
# divided by the same sums, and kept at or above RETIRE_CLAMP. Each rounding of the true
# value (relative 2**-53, or absolute 2**-1075 where it is subnormal) is then covered by
# the bound, with a relative slack below 2**-40 over ITERATION_LIMIT draws.
# The sum of the live values equals langdetect's sum bit for bit when every retired true
# value vanishes where it is added: below half an ulp of its partial sum (bound below
# 2**-56 of it: ABSORB once scaled), or, where not, when a later live language absorbs
# everything before it (the partial sum plus the retired bounds before it below 2**-56 of
# its value: RESET), which makes that partial sum the same in both. Checked at every sum;
# when it fails, the trial is run again without retiring (REDO_TRIAL). The live values
# are then langdetect's, bit for bit, and stay at or above 2**-616 (RETIRE_BELOW times
# five factors of at least 1e-7), so they are never subnormal. A retired language's true
# value is below 2**-55 of the sum, so it never passes CONV_THRESHOLD, and it adds 0 to
# the mean here where its true share is below 2**-55 / 7: each total is low by at most
# APPROX_TOTAL. The early stop's bound allows 1e-9 for rounding, and a final choice within
# APPROX_TOTAL of another language is run again exactly (REDO_EXACT).
RETIRE_OFF, RETIRE_ON, RETIRE_TEST, RETIRE_WIDE = 0, 1, 2, 3
RETIRE_WIDE_BELOW = 2.0 ** -20  # RETIRE_WIDE's threshold: the checks then fail often
RETIRE = RETIRE_ON  # what detection runs with (tests set the others)
RETIRE_AFTER = 100  # draws into a trial; most trials have converged by then
RETIRE_BELOW = 2.0 ** -500
RETIRE_SCALE = 2.0 ** 600
RETIRE_CLAMP = 2.0 ** -300
MARGIN = 2.0 ** -56  # "vanishes": below this share of a partial sum (half an ulp is over 2**-54 of it)
ABSORB = RETIRE_SCALE * MARGIN  # MARGIN, for a scaled bound
UNSCALE = 1.0 / RETIRE_SCALE
RESET = 1.0 / MARGIN
APPROX_TOTAL = 1e-15
# langdetect normalises with Python's sum(): a plain left-to-right sum of floats up to
# Python 3.11, Neumaier-compensated from 3.12 on (CPython gh-100425). The kernel does what
# the running interpreter does; ``neumaier_sum`` is that algorithm in Python.
COMPENSATED_SUM = sys.version_info >= (3, 12)
# After normalisation ASCII text holds only letters and spaces: 53 symbols, so every
# ASCII 2-/3-gram has a slot in a dense table.
N_SYM = 53

_VI_MARKS = re.compile("[\u0300\u0301\u0303\u0309\u0323]")
_VI_MARK_CHARS = "\u0300\u0301\u0303\u0309\u0323"


@lru_cache(maxsize=None)
def profiles():
    """``(langs, key_K[int64, sorted], prob_KR[float64], norm_table[int32, 0x10000])``;
    row ``k`` of ``prob`` holds the n-gram's probability in each language, then zeros up
    to ``ROW`` columns.

    Read straight from langdetect's profile files, in the order its ``DetectorFactory``
    reads them (``os.listdir``), with the same probabilities (count / n-grams of that
    length). Going through ``DetectorFactory`` instead would keep ~9M Python floats alive
    and make every full garbage collection of the process slow.
    """
    import json
    import os

    import langdetect
    from langdetect.utils.ngram import NGram

    pdir = os.path.join(os.path.dirname(langdetect.__file__), "profiles")
    langs: list[str] = []
    row_of: dict[str, int] = {}
    cells: list[tuple[int, int, float]] = []
    for name in os.listdir(pdir):
        path = os.path.join(pdir, name)
        if name.startswith(".") or not os.path.isfile(path):
            continue
        with open(path, encoding="utf-8") as f:
            prof = json.load(f)
        col = len(langs)
        langs.append(prof["name"])
        n_words = prof["n_words"]
        for gram, count in prof["freq"].items():
            r = row_of.setdefault(gram, len(row_of))
            if 1 <= len(gram) <= 3:
                cells.append((r, col, 1.0 * count / n_words[len(gram) - 1]))
    grams = list(row_of)
    prob = np.zeros((len(grams), len(langs)), dtype=np.float64)
    rows_a = np.fromiter((c[0] for c in cells), dtype=np.int64, count=len(cells))
    cols_a = np.fromiter((c[1] for c in cells), dtype=np.int64, count=len(cells))
    prob[rows_a, cols_a] = np.fromiter((c[2] for c in cells), dtype=np.float64, count=len(cells))
    del cells, row_of
    keep = [i for i, g in enumerate(grams) if 1 <= len(g) <= 3]
    keys_arr = np.array([gram_key(grams[i]) for i in keep], dtype=np.int64)
    order = np.argsort(keys_arr)
    prob = prob[np.array(keep, dtype=np.int64)[order]]
    if len(langs) > ROW:  # pragma: no cover - langdetect ships 55 profiles
        raise RuntimeError(f"{len(langs)} langdetect profiles; ROW={ROW} must be at least that")
    # rows padded with zeros to ROW values (seven cache-line aligned lines each): the
    # kernel's loops then have a fixed width, and a zero language stays exactly zero
    padded = aligned_zeros((prob.shape[0], ROW), 64)
    padded[:, : len(langs)] = prob
    prob = padded
    norm = np.array([ord(NGram.normalize(chr(c))) if not 0xD800 <= c <= 0xDFFF else c for c in range(0x10000)],
                    dtype=np.int32)
    return langs, keys_arr[order], prob, norm


def aligned_zeros(shape: tuple[int, int], align: int) -> np.ndarray:
    """A C-ordered float64 array of zeros whose first byte lies on an ``align``-byte
    boundary (numpy only promises 16): with rows of a multiple of ``align`` bytes, each
    row then starts on a cache line and covers no line it does not fill."""
    n = shape[0] * shape[1]
    raw = np.zeros(n * 8 + align, dtype=np.uint8)
    skip = -raw.ctypes.data % align
    return raw[skip : skip + n * 8].view(np.float64).reshape(shape)


@lru_cache(maxsize=None)
def _known_keys() -> frozenset:
    return frozenset(profiles()[1].tolist())


def gram_key(gram: str) -> int:
    k = 0
    for ch in gram:
        k = (k << 21) | (ord(ch) + 1)
    return k


def _preclean(text: str) -> str:
    """URL / e-mail removal and Vietnamese mark folding, as langdetect's ``append``."""
    if _may_hold_url(text):
        text = _langdetect_parts()[0].URL_RE.sub(" ", text)
    if "@" in text:
        text = strip_mail(text)
    if not text.isascii() and any(m in text for m in _VI_MARK_CHARS):  # = _VI_MARKS.search(text)
        text = _langdetect_parts()[1].normalize_vi(text)
    return text


_MAIL_LOCAL = frozenset("-_.0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
MAIL_LOCAL_MAX = 64  # the {1,64} before "@" in langdetect's MAIL_RE


def strip_mail(text: str) -> str:
    """``Detector.MAIL_RE.sub(" ", text)``, langdetect's e-mail removal, without scanning
    the text with the pattern: at every word character ``re`` tries ``[-_.0-9A-Za-z]{1,64}``
    up to 64 characters ahead before it fails for want of an "@" (114 us on one 2,767-
    character IFEval response).

    The pattern's three parts cannot hold "@", so each match holds exactly one, and the
    part before it is the run of local-part characters that ends at that "@". The leftmost
    match of an "@" therefore starts where that run starts (at most 64 characters back,
    and not before the end of the previous match); if the pattern fails there, where its
    first part has only the "@" to stop at, it fails at every later start too, because
    the rest of the match does not depend on the start. So ``re.sub``'s scan reduces to
    one anchored ``match`` per "@", tried from that start."""
    mail = _langdetect_parts()[0].MAIL_RE
    out = []
    done = 0  # text[:done] is settled (copied or replaced)
    at = text.find("@")
    while at >= 0:
        p = at
        lo = max(done, at - MAIL_LOCAL_MAX)
        while p > lo and text[p - 1] in _MAIL_LOCAL:
            p -= 1
        m = mail.match(text, p) if p < at else None
        if m is not None:
            out.append(text[done:p])
            out.append(" ")
            done = m.end()
            at = text.find("@", done)
        else:
            at = text.find("@", at + 1)
    if not out:
        return text
    out.append(text[done:])
    return "".join(out)


def _may_hold_url(text: str) -> bool:
    """False only when langdetect's ``https?://...`` cannot match: every match has a colon
    with "http" or "https" before it and "//" after it. The colons are found with
    ``str.find`` (a memchr), which is many times faster than searching for "http"."""
    p = text.find(":")
    while p >= 0:
        if text.startswith("//", p + 1) and (text.endswith("http", 0, p) or text.endswith("https", 0, p)):
            return True
        p = text.find(":", p + 1)
    return False


@lru_cache(maxsize=None)
def _langdetect_parts():
    from langdetect.detector import Detector
    from langdetect.utils.ngram import NGram

    return Detector, NGram


# ----------------------------------------------------------------------------- reference

def _collapse(text: str) -> str:
    out = []
    pre = None
    for ch in text[:MAX_TEXT]:
        if ch != " " or pre != " ":
            out.append(ch)
        pre = ch
    return "".join(out)


def _drop_latin_if_minor(text: str) -> str:
    latin = sum(1 for ch in text if "A" <= ch <= "z")
    other = sum(1 for ch in text if not ("A" <= ch <= "z") and ch >= "\u0300" and not ("\u1e00" <= ch <= "\u1eff"))
    if latin * 2 < other:
        return "".join(ch for ch in text if ch < "A" or ch > "z")
    return text


def ngrams_ref(text: str) -> list[str]:
    """The n-grams langdetect scores for ``text`` (after its cleaning), in order."""
    langs, keys, prob, norm = profiles()
    known = _known_keys()
    text = _drop_latin_if_minor(_collapse(_preclean(text)))
    grams = " "
    capital = False
    out = []
    for ch in text:
        if ord(ch) < 0x10000:
            ch = chr(norm[ord(ch)])
        last = grams[-1]
        if last == " ":
            grams = " "
            capital = False
            if ch == " ":
                continue
        elif len(grams) >= 3:
            grams = grams[1:]
        grams += ch
        if ch.isupper():
            if last.isupper():
                capital = True
        else:
            capital = False
        if capital:
            continue
        for n in (1, 2, 3):
            if len(grams) < n:
                break
            w = grams[-n:]
            if w != " " and gram_key(w) in known:
                out.append(w)
    return out


def neumaier_sum(xs) -> float:
    """CPython 3.12+'s ``sum()`` of floats (with the default int start 0): a running
    total with a Neumaier compensation term, added once at the end."""
    it = iter(xs)
    total = 0.0 + next(it, 0.0)  # 0 + x0, as sum() adds the int start to the first float
    c = 0.0
    for x in it:
        t = total + x
        if abs(total) >= abs(x):
            c += (total - t) + x
        else:
            c += (x - t) + total
        total = t
    if c and c - c == 0.0:  # only a finite, non-zero compensation is added
        total += c
    return total


_SUM = sum  # what ``detect_ref`` normalises with: the running interpreter's sum()


def detect_ref(text: str, seed: int = SEED) -> str | None:
    """langdetect's ``detect(text)`` with ``DetectorFactory.seed = seed``; None when
    langdetect would raise (no n-gram features), ``"unknown"`` when nothing clears 0.1."""
    langs, keys, prob, _ = profiles()
    grams = ngrams_ref(text)
    if not grams:
        return None
    rows = np.searchsorted(keys, [gram_key(g) for g in grams])
    table = [prob[r].tolist() for r in rows]
    nl = len(langs)
    rng = random.Random()
    rng.seed(seed)
    total = [0.0] * nl
    for _ in range(N_TRIAL):
        p = [1.0 / nl] * nl
        alpha = ALPHA + rng.gauss(0.0, 1.0) * ALPHA_WIDTH
        weight = alpha / BASE_FREQ
        i = 0
        while True:
            g = table[_choice_index(rng, len(table))]
            for j in range(nl):
                p[j] *= weight + g[j]
            if i % 5 == 0:
                s = _SUM(p)
                maxp = 0.0
                for j in range(nl):
                    v = p[j] / s
                    if maxp < v:
                        maxp = v
                    p[j] = v
                if maxp > CONV_THRESHOLD or i >= ITERATION_LIMIT:
                    break
            i += 1
        for j in range(nl):
            total[j] += p[j] / N_TRIAL
    best, best_p = None, PROB_THRESHOLD
    for j in range(nl):
        if total[j] > best_p:
            best, best_p = langs[j], total[j]
    return best or "unknown"


def _choice_index(rng: random.Random, n: int) -> int:
    # random.choice(seq) == seq[rng._randbelow(len(seq))]; spelled out so the numba port
    # can be checked against it line by line.
    k = n.bit_length()
    r = rng.getrandbits(k)
    while r >= n:
        r = rng.getrandbits(k)
    return r


# ----------------------------------------------------------------------------- numba

@njit(cache=True, inline="always")
def _counts_latin(ch):
    """1 for what langdetect's ``cleaning_text`` counts as Latin (A-z), else 0."""
    return np.int64((ch >= 65) & (ch <= 122))


@njit(cache=True, inline="always")
def _counts_non_latin(ch):
    """1 for what ``cleaning_text`` counts against the Latin letters: U+0300 and above,
    except Latin Extended Additional (U+1E00-U+1EFF)."""
    return np.int64((ch >= 0x300) & ((ch < 0x1E00) | (ch > 0x1EFF)))


@njit(cache=True)
def _grams_general(cps, norm, flags, table, unigram, code, dense2, dense3, buf, grams_idx):
    """Profile rows of the n-grams langdetect scores for ``cps`` (pre-cleaned), in
    order, written to ``grams_idx``; returns their number. (A direct-mapped cache of
    looked-up keys in front of the hash table made this 15% slower.)"""
    # append(): truncate, collapse runs of ' '
    n = 0
    pre = -1
    m = min(cps.shape[0], MAX_TEXT)
    for i in range(m):
        ch = cps[i]
        if ch != 32 or pre != 32:
            buf[n] = ch
            n += 1
        pre = ch
    # cleaning_text(): drop Latin letters when they are a small minority
    latin = 0
    other = 0
    for i in range(n):
        ch = buf[i]
        latin += _counts_latin(ch)
        other += _counts_non_latin(ch)
    if latin * 2 < other:
        w = 0
        for i in range(n):
            ch = buf[i]
            if ch < 65 or ch > 122:
                buf[w] = ch
                w += 1
        n = w
    # n-gram extraction over a 3-character window
    g0 = 32
    g1 = -1
    g2 = -1  # window chars, oldest first; -1 = empty slot
    glen = 1
    capital = False
    ng = 0
    for i in range(n):
        ch = buf[i]
        if ch < 0x10000:
            ch = norm[ch]
        last = g0 if glen == 1 else (g1 if glen == 2 else g2)
        if last == 32:
            g0 = 32
            glen = 1
            capital = False
            if ch == 32:
                continue
        elif glen >= 3:
            g0 = g1
            g1 = g2
            glen = 2
        if glen == 1:
            g1 = ch
        else:
            g2 = ch
        glen += 1
        if flags[ch] & 4:  # UPPER
            if last >= 0 and (flags[last] & 4):
                capital = True
        else:
            capital = False
        if capital:
            continue
        # 1-gram (never the lone space), then the 2- and 3-grams ending here
        if ch != 32:
            j = unigram[ch] if ch < 0x10000 else -1
            if j >= 0:
                grams_idx[ng] = j
                ng += 1
        # ASCII windows: dense tables (normalised ASCII is letters and spaces only)
        if ch < 128 and (glen < 2 or (g0 if glen == 2 else g1) < 128) and (glen < 3 or g0 < 128):
            cc = code[ch]
            if glen >= 2:
                cb = code[g0 if glen == 2 else g1]
                j = dense2[cb * N_SYM + cc]
                if j >= 0:
                    grams_idx[ng] = j
                    ng += 1
            if glen >= 3:
                j = dense3[(code[g0] * N_SYM + code[g1]) * N_SYM + cc]
                if j >= 0:
                    grams_idx[ng] = j
                    ng += 1
            continue
        for k in range(2, 4):
            if glen < k:
                break
            if k == 2:
                a = g0 if glen == 2 else g1
                key = (np.int64(a + 1) << np.int64(21)) | np.int64(ch + 1)
            else:
                key = (((np.int64(g0 + 1) << np.int64(21)) | np.int64(g1 + 1)) << np.int64(21)) | np.int64(ch + 1)
            j = _hash_get(table, key, HASH_BITS)
            if j >= 0:
                grams_idx[ng] = j
                ng += 1
    return ng


# ASCII n-gram keys: a 1-gram is its code (1-52), a 2-gram 53 + its two codes in base 53,
# a 3-gram K3 + its three codes in base 53. ``arow[key]`` is the profile row, read only for
# the n-grams the trials draw. ``aemit`` (one byte per entry, 152 KB) says whether an
# n-gram is emitted: at a 2- or 3-gram key, whether langdetect's profiles hold it and the
# window's rules let it out; at N_AKEYS + the 2-gram's base-53 part, the same for the
# 1-gram ending that 2-gram (its rules depend on the letter before it).
K2 = N_SYM
K3 = N_SYM + N_SYM * N_SYM
N_AKEYS = K3 + N_SYM * N_SYM * N_SYM
N_PAIRS = N_SYM * N_SYM


def _emit_rules(w1: int, k: int) -> tuple[int, int]:
    """Whether the 1- and 2-gram, and the 3-gram, ending at code ``k`` after code ``w1``
    are let out: the window restarts after a space, so a 3-gram needs ``w1 != 0``; a
    space after a space emits nothing; an upper-case letter after an upper-case letter
    (a "capital word") emits nothing (langdetect's sticky flag is always clear when the
    last letter was not upper case, so this is its rule)."""
    capital = 1 <= k <= 26 and 1 <= w1 <= 26
    e = 0 if capital or (k == 0 and w1 == 0) else 1
    return e, e & (w1 != 0)


@njit(cache=True)
def _grams_ascii(cps, acode, aemit, grams_idx):
    """``_grams_general`` for a text of ASCII code points only, as n-gram keys (see
    ``arow``). Normalised ASCII is letters and spaces, coded 0 (space), 1-26 (upper case),
    27-52 (lower case). Collapsing runs of spaces first changes nothing here (a space
    after a space only resets the window again), so it is skipped.

    Branch-free: every character stores its three candidate keys and advances the count
    by ``aemit`` of each, which holds both the profile's presence and the window's rules
    (``_emit_rules``). ``w1`` is the window's last code (0 at the start: the window starts
    as " "), ``j`` the base-53 part of the 2-gram ending here, ``pj`` the previous one."""
    # unsigned arithmetic throughout: numba then indexes without negative-index fix-ups
    m = min(cps.shape[0], MAX_TEXT)
    sym = np.uint64(N_SYM)
    w1 = np.uint64(0)
    pj = np.uint64(0)
    ng = np.uint64(0)
    for i in range(m):
        k = np.uint64(acode[np.uint64(cps[i])])
        j = w1 * sym + k
        k2 = np.uint64(K2) + j
        k3 = np.uint64(K3) + pj * sym + k
        grams_idx[ng] = k
        ng += np.uint64(aemit[np.uint64(N_AKEYS) + j])
        grams_idx[ng] = k2
        ng += np.uint64(aemit[k2])
        grams_idx[ng] = k3
        ng += np.uint64(aemit[k3])
        pj = j
        w1 = k
    return np.int64(ng)


@njit(cache=True)
def _as_ascii(cps, norm, out):
    """Write to ``out`` the text ``_grams_ascii`` can stand in for: the first MAX_TEXT
    code points of ``cps`` with each non-ASCII one that langdetect normalises to a space
    (curly quotes, dashes, no-break space, bullets, ellipsis: 116 code points) written as
    a space; return its length. -1 when some code point is neither ASCII nor one of
    those, or when the text's Latin letters are a minority that ``_grams_general`` drops
    (those code points count as non-Latin there, so a text of many dashes and few
    letters can be one). The two extractions then agree: the space is what the general
    path scores in their place, and the runs of spaces it collapses first change nothing
    (see ``_grams_ascii``)."""
    m = min(cps.shape[0], MAX_TEXT)
    latin = 0
    other = 0
    for i in range(m):
        ch = cps[i]
        if ch < 128:
            out[i] = ch
            latin += _counts_latin(ch)
        elif ch < 0x10000 and norm[ch] == 32:
            out[i] = 32
            other += _counts_non_latin(ch)
        else:
            return -1
    if latin * 2 < other:
        return -1
    return m


@njit(cache=True, inline="always")
def _random(stream, pos):
    """Python's ``random.random()`` from the two 32-bit outputs at ``stream[pos]``."""
    a = stream[pos] >> np.uint32(5)
    b = stream[pos + 1] >> np.uint32(6)
    return (float(a) * 67108864.0 + float(b)) * (1.0 / 9007199254740992.0)


@njit(cache=True, error_model="numpy")
def _trials(grams_idx, ng, arow, keyed, prob, nl, stream, target, compensated, acc, accp, retire, saved, resume):
    """Language index from the n-gram rows ``grams_idx[:ng]`` (ng > 0), or UNKNOWN; with
    ``keyed``, ``grams_idx`` holds ASCII n-gram keys and their rows are ``arow[key]``.

    ``stream`` holds the first outputs of the seeded Mersenne Twister, which is all the
    randomness langdetect draws: ``rng.gauss`` takes two ``random()`` calls of two outputs
    each (and caches its second value), ``rng.choice`` one output per try, shifted to the
    bit length of ``ng``, retried while out of range. REDO when the stream is too short.

    With ``target >= 0`` only "is it ``target``?" is asked: the trials stop as soon as
    the answer is decided, because each remaining trial can add at most 1/7 to any
    language's mean probability. The answer is then ``target`` or NOT_TARGET, the same
    verdict the full computation gives. (The normalising sum is never 0: the leading
    language keeps at least (weight)^5 of its mass between normalisations.)

    The choices are read from a list of the accepted outputs (``acc``, with their stream
    positions in ``accp``; scratch of ``stream.shape[0]`` entries), filled 256 outputs at
    a time without a branch per output: the trials then have no data-dependent branch
    in their draws. ``pos`` is the next unconsumed output, ``k`` the first accepted one
    at or after it. As each block starts, the profile rows of the block after the next
    one (PREFETCH_AHEAD) are prefetched, where those draws are listed already: the rows
    are 448 bytes each, spread over ~39 MB, and are often not in cache when they are read.

    With ``retire`` (RETIRE_ON), a trial that runs past RETIRE_AFTER draws stops computing
    the languages whose probability has fallen below RETIRE_BELOW, so that no value reaches
    the subnormal range, where every operation costs a microcode assist (the trials of a
    one-letter text ran 1.8x faster). The verdict stays exact (see RETIRE_BELOW). Where a
    check cannot prove it, the result is REDO_TRIAL, with the state at the start of that
    trial in ``saved``: run again with ``resume`` and RETIRE_OFF, it goes on from there.
    ``saved[:nl]`` holds the mean probabilities after the last trial run.
    REDO_EXACT asks for a whole run with RETIRE_OFF. For the tests: RETIRE_TEST retires
    from the first draw and fails every check (every such trial is resumed); RETIRE_WIDE
    retires from the first draw below RETIRE_WIDE_BELOW, where the checks decide and
    often fail."""
    end = stream.shape[0]
    pos = 0
    k = 0  # next accepted output to use
    na = 0  # accepted outputs listed
    scanned = 0  # outputs scanned into the list
    total = np.zeros(ROW)
    p = np.empty(ROW)
    blk = np.empty(5, dtype=np.int64)
    gauss_next = 0.0
    have_gauss = False
    kbits = 0
    while (1 << kbits) <= ng:
        kbits += 1
    shift = np.uint32(32 - kbits)
    live = np.empty(ROW)  # 1.0 for a live language, 0.0 once retired
    approx = False  # some language was retired: the totals are exact to APPROX_TOTAL
    t0 = 0
    if resume:  # go on from the trial whose check failed, retiring nothing from there on
        for j in range(nl):
            total[j] = saved[j]
        pos = np.int64(saved[ROW])
        k = np.int64(saved[ROW + 1])
        na = np.int64(saved[ROW + 2])
        scanned = np.int64(saved[ROW + 3])
        have_gauss = saved[ROW + 4] != 0.0
        gauss_next = saved[ROW + 5]
        t0 = np.int64(saved[ROW + 6])
        approx = saved[ROW + 7] != 0.0
    else:
        for j in range(nl):
            saved[j] = 0.0  # saved[:nl] holds the totals so far, from here on
    for _t in range(t0, N_TRIAL):
        # the state at the trial's start, kept for a resumed run (REDO_TRIAL); the totals
        # change only at its end
        pos_t, k_t, na_t, scanned_t, have_gauss_t, gauss_next_t = pos, k, na, scanned, have_gauss, gauss_next
        for j in range(ROW):
            p[j] = 0.0
            live[j] = 1.0 if j < nl else 0.0  # the padding counts as retired: its bound stays tiny
        for j in range(nl):
            p[j] = 1.0 / nl
        if have_gauss:
            z = gauss_next
            have_gauss = False
        else:
            if pos + 4 > end:
                return REDO
            x2pi = _random(stream, pos) * 6.283185307179586
            g2rad = np.sqrt(-2.0 * np.log(1.0 - _random(stream, pos + 2)))
            pos += 4
            z = np.cos(x2pi) * g2rad
            gauss_next = np.sin(x2pi) * g2rad
            have_gauss = True
            while k < na and accp[k] < pos:  # outputs the Gaussian took are not choices
                k += 1
            scanned = max(scanned, pos)
        alpha = ALPHA + (0.0 + z * 1.0) * ALPHA_WIDTH
        weight = alpha / BASE_FREQ
        # retire only where the bounds hold: every factor at least 1e-7, and the in-order
        # sum (the compensated one keeps what it absorbs)
        retire_t = RETIRE_WIDE_BELOW if retire == RETIRE_WIDE else RETIRE_BELOW
        if retire == RETIRE_OFF or compensated or weight < 1e-7:
            retire_t = 0.0
        retired = False  # some language is retired in this trial
        failed = False
        # Draws come in blocks that end where langdetect normalises (i % 5 == 0): the
        # first block is draw 0, then draws 1-5, 6-10, ... A block's rows are drawn
        # first, then each probability is multiplied by the block's factors in a register,
        # in draw order: the same products, rounded the same way, as one draw at a time.
        i = 0
        while True:
            nb = 1 if i == 0 else 5
            while na - k < nb:  # list more accepted outputs
                if scanned >= end:
                    return REDO
                hi = min(scanned + 256, end)
                for q in range(scanned, hi):
                    r = stream[q] >> shift
                    acc[na] = r
                    accp[na] = q
                    na += np.int64(r < ng)
                scanned = hi
            for d in range(nb):
                g = grams_idx[acc[k + d]]
                blk[d] = arow[g] if keyed else g
            k += nb
            pos = accp[k - 1] + 1
            # the rows of a later block, listed already, start coming from memory now
            for d in range(k + PREFETCH_AHEAD, min(k + PREFETCH_AHEAD + 5, na)):
                g = grams_idx[acc[d]]
                prefetch_row(prob, arow[g] if keyed else g, ROW_BYTES)
            if nb == 1:
                pr = prob[blk[0]]
                for j in range(ROW):  # the padding stays 0
                    p[j] *= weight + pr[j]
            else:
                r0 = prob[blk[0]]
                r1 = prob[blk[1]]
                r2 = prob[blk[2]]
                r3 = prob[blk[3]]
                r4 = prob[blk[4]]
                for j in range(ROW):
                    v = p[j] * (weight + r0[j])
                    v *= weight + r1[j]
                    v *= weight + r2[j]
                    v *= weight + r3[j]
                    p[j] = v * (weight + r4[j])
                i += 4
            if compensated:  # Python >= 3.12's sum(), see neumaier_sum
                s = p[0]
                c = 0.0
                for j in range(1, nl):
                    x = p[j]
                    t = s + x
                    if abs(s) >= abs(x):
                        c += (s - t) + x
                    else:
                        c += (x - t) + s
                    s = t
                if c != 0.0 and c - c == 0.0:
                    s += c
            else:  # in order, as Python's sum() up to 3.11
                s = 0.0
                if retired:  # the sum of the live values, and the check of RETIRE_BELOW
                    pb = 0.0  # retired bounds so far
                    last_open = -1  # the last retired language not absorbed where it is added
                    last_reset = -1  # the last live language that absorbs everything before it
                    for j in range(nl):  # selects only: the chain of additions sets the pace
                        x = p[j]
                        lv = live[j]
                        xr = x * (1.0 - lv)
                        last_open = j if (lv == 0.0) & (xr >= s * ABSORB) else last_open
                        last_reset = j if (lv != 0.0) & ((s + pb * UNSCALE) * RESET < x) else last_reset
                        pb += xr
                        s += x * lv  # a retired language adds 0.0
                    if last_open > last_reset:
                        failed = True
                        break
                else:
                    for j in range(nl):
                        s += p[j]
            # trials that run long are where values underflow: retiring starts there
            below = retire_t if i >= RETIRE_AFTER or retire >= RETIRE_TEST else 0.0
            conv = False  # max(p) > CONV_THRESHOLD over the live languages, as an or-reduction
            if below == 0.0:  # nothing is retired in this trial
                for j in range(ROW):
                    v = p[j] / s
                    p[j] = v
                    conv |= v > CONV_THRESHOLD
            else:
                for j in range(ROW):
                    v = p[j] / s
                    lv = live[j]
                    conv |= v * lv > CONV_THRESHOLD
                    new = (v < below) & (lv != 0.0)
                    p[j] = (v * RETIRE_SCALE if new else v) if lv != 0.0 else max(v, RETIRE_CLAMP)
                    live[j] = 0.0 if new else lv
                    retired |= new
            if conv or i >= ITERATION_LIMIT:
                break
            i += 1
        if failed or (retired and retire == RETIRE_TEST):  # saved[:nl] holds the totals already
            saved[ROW] = pos_t
            saved[ROW + 1] = k_t
            saved[ROW + 2] = na_t
            saved[ROW + 3] = scanned_t
            saved[ROW + 4] = 1.0 if have_gauss_t else 0.0
            saved[ROW + 5] = gauss_next_t
            saved[ROW + 6] = _t
            saved[ROW + 7] = 1.0 if approx else 0.0
            return REDO_TRIAL
        approx |= retired
        for j in range(nl):  # a retired language's true share is below 2**-55 / N_TRIAL: 0 here
            total[j] += p[j] * live[j] / N_TRIAL
            saved[j] = total[j]
        if target >= 0:
            bound = (N_TRIAL - 1 - _t) / N_TRIAL + 1e-9
            tv = total[target]
            win = tv > PROB_THRESHOLD
            for j in range(nl):
                if j != target:
                    if total[j] > tv + bound:
                        return NOT_TARGET
                    if total[j] + bound >= tv:
                        win = False
            if win:
                return target
    best = UNKNOWN
    best_p = PROB_THRESHOLD
    for j in range(nl):
        if total[j] > best_p:
            best = j
            best_p = total[j]
    if approx:  # each total may lie up to APPROX_TOTAL above its value here
        for j in range(nl):
            if j != best and abs(total[j] - best_p) <= APPROX_TOTAL:
                return REDO_EXACT
    return best


@njit(cache=True)
def _case_ok(cps, flags, case):
    """``str.isupper()`` (case 1) or ``str.islower()`` (case 2) of the text: no character of
    the other case or title case, and at least one of the asked case."""
    bad = (LOWER | TITLE) if case == 1 else (UPPER | TITLE)
    want = UPPER if case == 1 else LOWER
    cased = False
    for i in range(cps.shape[0]):
        f = flags[cps[i]]
        if f & bad:
            return False
        if f & want:
            cased = True
    return cased


@njit(cache=True)
def _may_need_clean(cps):
    """Can ``_preclean`` change this text? Only where it holds "://" (a URL needs "http://"
    or "https://"), "@" (an e-mail address) or a code point in U+0300-U+0323 (where the
    Vietnamese marks lie). One pass without a branch (an or-reduction that vectorises)."""
    n = cps.shape[0]
    hit = False
    for i in range(n - 2):
        c = np.uint32(cps[i])
        hit |= (c == 64) | ((c == 58) & (cps[i + 1] == 47) & (cps[i + 2] == 47)) | (c - np.uint32(0x300) <= 0x23)
    for i in range(max(n - 2, 0), n):
        c = np.uint32(cps[i])
        hit |= (c == 64) | (c - np.uint32(0x300) <= 0x23)
    return hit


@parallel_kernel()
def _detect_many(cps, starts, ends, norm, flags, table, unigram, code, dense2, dense3, acode, aemit, arow, prob, nl,
                 stream, targets, cases, ascii_, n_chunks, compensated, retire, check_clean):
    """Detect every text; the texts are cut into ``n_chunks`` runs (one per thread), each
    with its scratch arrays. With ``check_clean``, the texts are as given (the case test is
    IFEval's, on the response itself), and one that ``_preclean`` may change is answered
    NEEDS_CLEAN after its case test, without detection."""
    nt = starts.shape[0]
    out = np.empty(nt, dtype=np.int64)
    for c in prange(n_chunks):
        lo = nt * c // n_chunks
        hi = nt * (c + 1) // n_chunks
        longest = 1
        for t in range(lo, hi):
            longest = max(longest, min(ends[t] - starts[t], MAX_TEXT))
        grams_idx = np.empty(3 * longest, dtype=np.int32)
        buf = np.empty(longest, dtype=np.int32)
        as_ascii = np.empty(longest, dtype=np.uint8)
        acc = np.empty(stream.shape[0], dtype=np.uint32)
        accp = np.empty(stream.shape[0], dtype=np.int64)
        saved = np.empty(ROW + 8)
        for t in range(lo, hi):
            a = starts[t]
            b = ends[t]
            if cases[t] != 0 and not _case_ok(cps[a:b], flags, cases[t]):
                out[t] = CASE_FAILS
                continue
            if check_clean and _may_need_clean(cps[a:b]):
                out[t] = NEEDS_CLEAN
                continue
            keyed = ascii_[t]
            if keyed:
                ng = _grams_ascii(cps[a:b], acode, aemit, grams_idx)
            else:
                n_as = _as_ascii(cps[a:b], norm, as_ascii)
                if n_as >= 0:  # ASCII text with typographic punctuation: the ASCII extraction
                    keyed = True
                    ng = _grams_ascii(as_ascii[:n_as], acode, aemit, grams_idx)
                else:
                    ng = _grams_general(cps[a:b], norm, flags, table, unigram, code, dense2, dense3, buf, grams_idx)
            if ng == 0:
                out[t] = NO_FEATURES
            else:
                rt = retire
                resume = False
                while True:  # one call site: the trials are compiled once into this loop
                    r = _trials(grams_idx, ng, arow, keyed, prob, nl, stream, targets[t], compensated, acc, accp,
                                rt, saved, resume)
                    if r != REDO_TRIAL and r != REDO_EXACT:
                        break
                    rt = RETIRE_OFF  # the rest of this text's trials run exactly
                    resume = r == REDO_TRIAL
                out[t] = r
    return out


HASH_BITS = 18  # 256k slots for the 87,598 profiled n-grams


@njit(cache=True, inline="always")
def _slot(key, bits):
    return (np.uint64(key) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(64 - bits)


@njit(cache=True)
def _build_hash(keys, bits):
    # key and row side by side, so a probe touches one cache line
    size = 1 << bits
    table = np.full((size, 2), -1, dtype=np.int64)
    mask = size - 1
    unigram = np.full(0x10000, -1, dtype=np.int32)
    for j in range(keys.shape[0]):
        key = keys[j]
        if key < (1 << 21) and key - 1 < 0x10000:
            unigram[key - 1] = j
        s = np.int64(_slot(key, bits))
        while table[s, 0] != -1:
            s = (s + 1) & mask
        table[s, 0] = key
        table[s, 1] = j
    return table, unigram


@njit(cache=True, inline="always")
def _hash_get(table, key, bits):
    mask = table.shape[0] - 1
    s = np.int64(_slot(key, bits))
    while True:
        k = table[s, 0]
        if k == key:
            return table[s, 1]
        if k == -1:
            return -1
        s = (s + 1) & mask




@njit(cache=True)
def _build_dense(keys):
    code = np.full(128, -1, dtype=np.int64)
    code[32] = 0
    for c in range(65, 91):
        code[c] = c - 64
    for c in range(97, 123):
        code[c] = c - 70
    dense2 = np.full(N_SYM * N_SYM, -1, dtype=np.int32)
    dense3 = np.full(N_SYM * N_SYM * N_SYM, -1, dtype=np.int32)
    for j in range(keys.shape[0]):
        key = keys[j]
        c3 = (key & 0x1FFFFF) - 1
        c2 = ((key >> 21) & 0x1FFFFF) - 1
        c1 = ((key >> 42) & 0x1FFFFF) - 1
        if key >> 21 == 0:
            continue  # 1-gram: handled by the unigram table
        if key >> 42 == 0:
            if c2 < 128 and c3 < 128 and code[c2] >= 0 and code[c3] >= 0:
                dense2[code[c2] * N_SYM + code[c3]] = j
        elif c1 < 128 and c2 < 128 and c3 < 128 and code[c1] >= 0 and code[c2] >= 0 and code[c3] >= 0:
            dense3[(code[c1] * N_SYM + code[c2]) * N_SYM + code[c3]] = j
    return code, dense2, dense3


@lru_cache(maxsize=None)
def hash_table():
    """Look-up tables of the n-gram extraction: the hashed n-gram keys, the unigram rows,
    the dense ASCII tables, and for ASCII input the code of each normalised character
    (``acode``), the profile row of each ASCII n-gram key (``arow``, -1 when not
    profiled) and the emit table ``aemit`` (see ``_grams_ascii``)."""
    keys, norm = profiles()[1], profiles()[3]
    table, unigram = _build_hash(keys, HASH_BITS)
    code, dense2, dense3 = _build_dense(keys)
    acode = np.array([code[norm[c]] for c in range(128)], dtype=np.int64)
    if (acode < 0).any():  # pragma: no cover - langdetect maps ASCII to letters and spaces
        raise RuntimeError("langdetect normalises some ASCII character to a non-letter")
    arow = np.full(N_AKEYS, -1, dtype=np.int32)
    for c in range(128):
        if acode[c] > 0:
            arow[acode[c]] = unigram[norm[c]]
    arow[K2:K3] = dense2
    arow[K3:] = dense3
    rules = np.array([_emit_rules(w1, k) for w1 in range(N_SYM) for k in range(N_SYM)], dtype=np.uint8)
    present = (arow >= 0).astype(np.uint8)
    aemit = np.zeros(N_AKEYS + N_PAIRS, dtype=np.uint8)
    aemit[K2:K3] = rules[:, 0] & present[K2:K3]
    aemit[K3:N_AKEYS] = np.tile(rules[:, 1], N_SYM) & present[K3:]  # a 3-gram's rules: its last two codes
    aemit[N_AKEYS:] = rules[:, 0] & np.tile(present[:N_SYM], N_SYM)  # the 1-gram k of pair (w1, k)
    return table, unigram, code, dense2, dense3, acode, aemit, arow


_STREAMS: dict[int, np.ndarray] = {}


def mt_stream(seed: int, min_words: int = 0) -> np.ndarray:
    """The first (at least ``max(min_words, STREAM_WORDS)``) 32-bit outputs of
    ``random.Random(seed)``, as ``getrandbits(32)`` returns them one by one
    (``randbytes`` packs them little-endian)."""
    want = max(min_words, STREAM_WORDS)
    st = _STREAMS.get(seed)
    if st is None or st.shape[0] < want:
        st = _STREAMS[seed] = np.frombuffer(random.Random(seed).randbytes(4 * want), dtype="<u4").astype(np.uint32)
    return st


def _codes(texts: list[str], targets: np.ndarray, seed: int, cases: np.ndarray | None = None) -> np.ndarray:
    from ifrl.constraints.text.unicode import in_slices

    if cases is None:
        cases = np.zeros(len(texts), dtype=np.int64)
    return in_slices(texts, lambda t, tg, cs: _codes_slice(t, tg, seed, cs), targets, cases)


def _codes_slice(texts: list[str], targets: np.ndarray, seed: int, cases: np.ndarray) -> np.ndarray:
    """The codes of the texts as given; those the kernel sends back NEEDS_CLEAN (after
    their case test) are cleaned here, as langdetect does, and detected again."""
    out = _detect_texts(texts, targets, seed, cases, True)
    dirty = np.nonzero(out == NEEDS_CLEAN)[0]
    if dirty.shape[0]:
        cleaned = [_preclean(texts[i]) for i in dirty.tolist()]
        out[dirty] = _detect_texts(cleaned, targets[dirty], seed, np.zeros(len(cleaned), dtype=np.int64), False)
    return out


def _detect_texts(texts: list[str], targets: np.ndarray, seed: int, cases: np.ndarray, check_clean: bool) -> np.ndarray:
    from ifrl.constraints.text.unicode import encode_texts

    langs, keys, prob, norm = profiles()
    flags, _ = tables()
    cps, starts, ends = encode_texts(texts)
    ascii_ = np.fromiter(map(str.isascii, texts), dtype=np.bool_, count=len(texts))  # a flag, not a scan
    table, unigram, code, dense2, dense3, acode, aemit, arow = hash_table()
    stream = mt_stream(seed)
    out = _detect_many(cps, starts, ends, norm, flags, table, unigram, code, dense2, dense3, acode, aemit, arow, prob,
                       len(langs), stream, targets, cases, ascii_, thread_runs(len(texts), cps.shape[0]),
                       COMPENSATED_SUM, RETIRE, check_clean)
    while (out == REDO).any():  # a text drew past the precomputed outputs: double them
        stream = mt_stream(seed, 2 * stream.shape[0])
        redo = np.nonzero(out == REDO)[0]
        sub = [texts[i] for i in redo.tolist()]
        c2, s2, e2 = encode_texts(sub)
        # these texts passed their case test and need no cleaning
        out[redo] = _detect_many(c2, s2, e2, norm, flags, table, unigram, code, dense2, dense3, acode, aemit, arow, prob,
                                 len(langs), stream, targets[redo], np.zeros(len(sub), dtype=np.int64),
                                 ascii_[redo], thread_runs(len(sub), c2.shape[0]), COMPENSATED_SUM, RETIRE, False)
    return out


def is_language_batch(texts: list[str], languages: list[str], seed: int = SEED,
                      cases: list[int] | None = None) -> list[bool]:
    """``detect(text) == language`` for each pair, where undetectable text (no n-gram
    features: langdetect raises) counts as a match, as IFEval's checks do. With ``cases``,
    text ``i`` must also pass ``str.isupper()`` (``cases[i] == 1``) or ``str.islower()``
    (``cases[i] == 2``) first; it fails without detection otherwise."""
    if not texts:
        return []
    langs = profiles()[0]
    index = _lang_index()
    # a language langdetect cannot output is never detected: full detection decides
    # only the "no features" case, which still passes
    targets = np.array([index.get(l, -1) for l in languages], dtype=np.int64)
    case_arr = None if cases is None else np.array(cases, dtype=np.int64)
    codes = _codes(texts, targets, seed, case_arr)
    return [c == NO_FEATURES or (c >= 0 and c == tgt) for c, tgt in zip(codes.tolist(), targets.tolist())]


@lru_cache(maxsize=None)
def _lang_index() -> dict:
    return {l: i for i, l in enumerate(profiles()[0])}


def detect_batch(texts: list[str], seed: int = SEED) -> list[str | None]:
    """``detect_ref`` for many texts at once (numba, parallel over texts)."""
    if not texts:
        return []
    langs = profiles()[0]
    codes = _codes(texts, np.full(len(texts), -1, dtype=np.int64), seed)
    out: list[str | None] = []
    for c in codes.tolist():
        out.append(None if c == NO_FEATURES else ("unknown" if c == UNKNOWN else langs[c]))
    return out
