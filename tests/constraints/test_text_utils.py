"""The fast text utilities against their references and against NLTK / langdetect:
Punkt sentence spans, Treebank capital-word counts, seeded language detection."""

import random

import numpy as np
import pytest

from ifrl.constraints.text import langdetect as L
from ifrl.constraints.text import punkt, punkt_fast, treebank

EDGE_TEXTS = [
    "", " ", "\n\n", "...", "?!", "no punctuation at all", "Dr. Smith met Mr. Jones at 5 p.m. today. He left.",
    "U.S.A. is big. E.g. this. I.B.M. rose 3.5 pct. Sales fell.", 'Hello!!! (Really.) "Yes." Next... ok. . . done',
    "'Quote.' Then. 3. Four", "a.b.c d. E", "x \u0130stanbul. Now", "end.)Next one.", "A. B. C. d. e.",
    "He said \u201chi.\u201d Then left.", "1. First\n2. Second\n\nNew para. Here.", "Mr.\n\nSmith. ok?  Yes!",
    "Windows\r\nline. Ends.\r\n", "Emoji \U0001F600. Next \U0001F600 one!", "I CANNOT GO. DON'T STOP. WE'RE HERE. 'TIS OK.",
    "D'YE know MORE'N this? A--B A-B AI, (US) \"OK\" A.B.C. IT'S THE CITY'S. X'LL GO", "\u00e9t\u00e9. \u00c9t\u00e9 FORT.",
]


def _fuzz_texts(rows, n, seed):
    rng = random.Random(seed)
    out = []
    for r in rng.sample(rows, n):
        t = r["response"]
        op = rng.randrange(6)
        if op == 0:
            t = t.upper()
        elif op == 1:
            t = t.replace(". ", ".\n", 5)
        elif op == 2:
            t = t[: rng.randint(1, max(1, len(t)))]
        elif op == 3:
            t = t.replace(" ", "  ").replace("\n", "\r\n")
        elif op == 4:
            t = t.swapcase()
        out.append(t)
    return out


@pytest.fixture(scope="module")
def texts(ifeval_rows):
    return [r["response"] for r in ifeval_rows] + EDGE_TEXTS + _fuzz_texts(ifeval_rows, 300, 7)


def test_punkt_numba_equals_reference(texts):
    assert punkt_fast.sentence_spans_batch(texts) == [punkt.sentence_spans_ref(t) for t in texts]
    assert punkt_fast.count_sentences_batch(texts).tolist() == [punkt.count_sentences_ref(t) for t in texts]


def test_punkt_reference_equals_nltk(texts, official):
    from nltk.tokenize import PunktTokenizer

    tok = PunktTokenizer("english")
    assert [punkt.sentence_spans_ref(t) for t in texts] == [list(tok.span_tokenize(t)) for t in texts]


def test_capital_counts_equal_nltk_word_tokenize(texts, official):
    import nltk

    spans = punkt_fast.sentence_spans_batch(texts)
    for t, sp in zip(texts, spans):
        want = sum(1 for w in nltk.word_tokenize(t) if w.isupper())
        assert treebank.capital_count_fast(t, sp) == want, t[:200]
    for t in texts[::3]:
        assert treebank.capital_count_ref(t) == sum(1 for w in nltk.word_tokenize(t) if w.isupper()), t[:200]


def test_langdetect_numba_and_reference_equal_langdetect(texts, official):
    import langdetect

    sample = texts[::3] + EDGE_TEXTS + ["Das ist ein Haus.", "\u3053\u308c\u306f\u65e5\u672c\u8a9e\u3067\u3059",
                                       "\u041f\u0440\u0438\u0432\u0435\u0442 \u043c\u0438\u0440", "http://x.org a@b.com ok"]
    want = []
    for t in sample:
        try:
            want.append(langdetect.detect(t))
        except langdetect.LangDetectException:
            want.append(None)
    assert L.detect_batch(sample) == want
    assert [L.detect_ref(t) for t in sample[::4]] == want[::4]
    langs = ["en", "de", "ja", "xx"]
    targets = [langs[i % 4] for i in range(len(sample))]
    assert L.is_language_batch(sample, targets) == [w is None or w == g for w, g in zip(want, targets)]


def test_langdetect_constants_match_package():
    from langdetect.detector import Detector

    assert (L.ALPHA, L.ALPHA_WIDTH, L.ITERATION_LIMIT, L.PROB_THRESHOLD, L.CONV_THRESHOLD, L.BASE_FREQ) == (
        Detector.ALPHA_DEFAULT, Detector.ALPHA_WIDTH, Detector.ITERATION_LIMIT, Detector.PROB_THRESHOLD,
        Detector.CONV_THRESHOLD, Detector.BASE_FREQ)


def test_capital_numba_kernel_equals_nltk(texts, official):
    import nltk

    from ifrl.constraints.engine_kernels import capital_counts, capital_counts_batch

    extra = ["x \u00c9T\u00c9 FORT. \u201cHELLO\u201d WORLD\u2019S", "A\u2014B C\u2013D", "I'm here. WE'RE", "GONNA WANNA go"]
    sample = texts + EDGE_TEXTS + extra
    got = capital_counts(sample, punkt_fast.sentence_spans_batch(sample))
    want = [sum(1 for w in nltk.word_tokenize(t) if w.isupper()) for t in sample]
    assert got == want
    assert capital_counts_batch(sample) == want


def test_langdetect_case_tests_equal_str_methods(texts):
    """is_language_batch(cases=...): the kernel's isupper/islower equal Python's."""
    extra = ["ABC \u01c5X", "abc \u01c5x", "\u0394\u0395 A", "\u03b4\u03b5 a", "ÑANDÚ CAFÉ", "ñandú café",
             "123 !!", "HTTP://X.ORG HELLO", "http://x.org hello", "\U0001d400BC", "\u2160\u2161 AB", "\u2170 ab"]
    sample = texts[::5] + [t.upper() for t in texts[::7]] + [t.lower() for t in texts[::7]] + extra
    langs = ["en"] * len(sample)
    plain = L.is_language_batch(sample, langs)
    for case, test in ((1, str.isupper), (2, str.islower)):
        got = L.is_language_batch(sample, langs, cases=[case] * len(sample))
        assert got == [test(t) and ok for t, ok in zip(sample, plain)]


def test_sliced_batches_give_the_same_verdicts(ifeval_rows, monkeypatch):
    """Large batches run in slices on one thread; slicing must not change any verdict."""
    import numba

    from ifrl.constraints import verify_batch
    from ifrl.constraints.text import unicode

    resp = [r["response"] for r in ifeval_rows]
    ids = [r["instruction_id_list"] for r in ifeval_rows]
    kws = [r["kwargs"] for r in ifeval_rows]
    whole = verify_batch(resp, ids, kws)
    spans = punkt_fast.sentence_spans_batch(resp)
    langs = L.detect_batch(resp[::4])
    prev = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        monkeypatch.setattr(unicode, "SLICE_CODEPOINTS", 5000)
        assert verify_batch(resp, ids, kws) == whole
        assert punkt_fast.sentence_spans_batch(resp) == spans
        assert L.detect_batch(resp[::4]) == langs
    finally:
        numba.set_num_threads(prev)



def test_parallel_and_plain_kernel_twins_give_the_same_results(ifeval_rows, monkeypatch):
    """Each ``parallel_kernel`` runs its plain twin below PARALLEL_MIN_CODEPOINTS and its
    ``prange`` twin above; with the threshold at 0 every kernel runs the parallel one (on
    two threads where numba has them), and every verdict and count stays the same."""
    import numba

    from ifrl.constraints import engine_kernels, verify_batch
    from ifrl.constraints.text import unicode

    resp = [r["response"] for r in ifeval_rows]
    ids = [r["instruction_id_list"] for r in ifeval_rows]
    kws = [r["kwargs"] for r in ifeval_rows]
    tiny = ["", "A", "Hi. OK!", "\u4e2d\u6587"]

    def run():
        return (verify_batch(resp, ids, kws), punkt_fast.sentence_spans_batch(resp + tiny),
                L.detect_batch(resp[::3] + tiny), engine_kernels.count_words(resp + tiny).tolist(),
                engine_kernels.count_bullets(resp).tolist(), engine_kernels.capital_counts_batch(resp + tiny))

    assert unicode.thread_runs(len(resp), 10) == 1
    plain = run()
    calls = []
    kernel = engine_kernels._count_words
    monkeypatch.setattr(kernel, "parallel", lambda *a: calls.append(1) or kernel.serial(*a))
    monkeypatch.setattr(unicode, "PARALLEL_MIN_CODEPOINTS", 0)
    engine_kernels.count_words(tiny)
    assert calls  # the threshold picks the twin
    monkeypatch.undo()
    monkeypatch.setattr(unicode, "PARALLEL_MIN_CODEPOINTS", 0)
    prev = numba.get_num_threads()
    numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
    try:
        assert unicode.thread_runs(len(resp), 10) == numba.get_num_threads()
        assert run() == plain
    finally:
        numba.set_num_threads(prev)

@pytest.mark.parametrize("batch", [
    pytest.param([], id="empty batch"),
    pytest.param(["", "", ""], id="only empty texts"),
    pytest.param(["abc", "", "de\r\nf"], id="ascii with an empty text"),
    pytest.param(["caf\u00e9", "", "plain", "\U0001F600 ok", "\u4e2d\u6587"], id="mixed widths, original order"),
    pytest.param(["ascii first", "x\ud800y", "\udfff"], id="lone surrogates keep their code point"),
    pytest.param(["\x00", "a\x00", "\u00e9\x00\x00"], id="NUL characters, also trailing"),
    pytest.param(["\u00ff" * 3, "\uffff", "\U0010ffff"], id="the top of each width"),
])
def test_encode_texts_gives_each_texts_code_points(batch):
    """``encode_texts``: text ``i`` is ``cps[starts[i]:ends[i]]``, code point for code point,
    the texts end to end in their order; uint8 exactly when the batch is ASCII."""
    from ifrl.constraints.text.unicode import encode_texts

    cps, starts, ends = encode_texts(batch)
    assert cps.dtype == (np.uint8 if all(t.isascii() for t in batch) else np.uint32)
    assert cps.shape[0] == sum(map(len, batch)) and starts.shape == ends.shape == (len(batch),)
    assert (starts[1:] == ends[:-1]).all() and (not batch or starts[0] == 0)
    for t, a, b in zip(batch, starts.tolist(), ends.tolist()):
        assert cps[a:b].tolist() == [ord(c) for c in t], repr(t)


def test_kernels_compute_the_same_on_ascii_bytes_and_utf32(texts, monkeypatch):
    """An all-ASCII batch reaches the kernels as its bytes (uint8), any other as UTF-32
    (uint32): on the same ASCII texts every kernel gives the same results at both widths."""
    from ifrl.constraints import engine_kernels
    from ifrl.constraints.text import unicode

    sample = [t for t in texts if t.isascii()]
    sample += [t.upper() for t in sample[::9]] + [t.lower() for t in sample[::11]]
    assert len(sample) > 400 and unicode.encode_texts(sample)[0].dtype == np.uint8

    def run():
        n = len(sample)
        return (engine_kernels.count_words(sample).tolist(), engine_kernels.count_bullets(sample).tolist(),
                engine_kernels.count_highlights_batch(sample, [1 + i % 4 for i in range(n)]).tolist(),
                engine_kernels.capital_counts_batch(sample), punkt_fast.sentence_spans_batch(sample),
                L.detect_batch(sample),
                L.is_language_batch(sample, ["en", "de"] * (n // 2) + ["en"] * (n % 2), cases=[i % 3 for i in range(n)]))

    as_bytes = run()
    encode = unicode.encode_texts

    def utf32(batch):
        cps, starts, ends = encode(batch)
        return cps.astype(np.uint32), starts, ends

    for mod in (unicode, punkt_fast, engine_kernels):
        monkeypatch.setattr(mod, "encode_texts", utf32)
    assert unicode.encode_texts(sample[:3])[0].dtype == np.uint32
    as_utf32 = run()
    for name, a, b in zip(("words", "bullets", "highlights", "capitals", "spans", "detect", "is_language"),
                          as_bytes, as_utf32):
        assert a == b, name
    assert any(as_bytes[0]) and any(c > 0 for c in as_bytes[3]) and "en" in as_bytes[5]


_ROW_BYTES = L.ROW_BYTES  # a module global: numba reads it as the compile-time constant prefetch_row needs


def test_prefetch_row_is_one_prefetch_per_line_and_changes_no_value():
    """``prefetch_row`` compiles to one prefetch per 64-byte line of the row (7 for a
    langdetect profile row of ROW_BYTES) and leaves every value as it is; the byte count
    must be a compile-time constant."""
    import platform

    import numba

    from ifrl.constraints.text.prefetch import prefetch_row

    @numba.njit
    def walk(table, rows):
        s = 0.0
        for i in range(rows.shape[0]):
            if i + 1 < rows.shape[0]:
                prefetch_row(table, rows[i + 1], _ROW_BYTES)
            s += table[rows[i], 3]
        return s

    table = np.random.default_rng(0).random((1000, L.ROW))
    rows = np.random.default_rng(1).integers(0, 1000, 5000)
    assert walk(table, rows) == sum(table[r, 3] for r in rows.tolist())

    @numba.njit
    def one(table, r):
        prefetch_row(table, r, _ROW_BYTES)

    one(table, 7)
    if platform.machine() in ("x86_64", "AMD64"):
        asm = one.inspect_asm(one.signatures[0])
        assert L.ROW_BYTES == 448 and sum("prefetcht0" in line for line in asm.splitlines()) == 7

    @numba.njit
    def runtime_size(table, n):
        prefetch_row(table, 0, n)

    with pytest.raises(numba.core.errors.TypingError):
        runtime_size(table, 512)


def test_url_precheck_never_misses_a_langdetect_url():
    """langdetect's URL removal runs only where ``_may_hold_url`` says a URL may be."""
    import random

    from langdetect.detector import Detector

    rng = random.Random(0)
    parts = ["http", "https", ":", "//", "/", "s", "x", " ", "a", "h", "ttp", "://", "HTTP"]
    hits = 0
    for _ in range(20000):
        t = "".join(rng.choice(parts) for _ in range(rng.randint(0, 8)))
        if Detector.URL_RE.search(t):
            hits += 1
            assert L._may_hold_url(t), t
    assert hits > 100
    assert not L._may_hold_url("time: 10:30, see http or //x")


def test_profile_rows_start_on_cache_lines():
    """Each profile row (ROW doubles) starts on a 64-byte line (numpy alone gives 16-byte
    alignment), and the aligned copy holds langdetect's values (the row of "a", every language)."""
    langs, keys, prob, _ = L.profiles()
    assert prob.ctypes.data % 64 == 0 and prob.flags["C_CONTIGUOUS"] and prob.shape[1] * 8 % 64 == 0
    assert not prob[:, len(langs):].any()
    import langdetect.detector_factory as F

    F.init_factory()
    want = F._factory.word_lang_prob_map["a"]
    row = prob[int(np.searchsorted(keys, L.gram_key("a")))]
    assert row[: len(langs)].tolist() == [want[F._factory.langlist.index(lang)] for lang in langs]


MAIL_EDGE_TEXTS = [
    "", "@", "@@", "a@", "@b", "a@b", "a@bc", "a@.b", "a@b.", "a.@b.c", "x a@bc y a@bc", "a@bc@de", "a@b@c",
    "a" * 64 + "@bc", "a" * 65 + "@bc", "." * 70 + "@x.y", "a@" + "b" * 255 + ".c", "a@" + "b" * 256, "a@" + "b" * 600,
    "a@" + "b" * 255 + "." * 300, "x\u00e9@bc", "\u00e9a@bc d@e", "mail me@example.com, or you@x.org!", "@a@bc",
    "a@bc d", "a@-_", "a@_.", "a@..", "ab@ cd@ef", "a" * 70 + "@" + "a" * 70 + "@bc",
]


@pytest.mark.parametrize("text", MAIL_EDGE_TEXTS, ids=[f"edge{i}" for i in range(len(MAIL_EDGE_TEXTS))])
def test_strip_mail_is_langdetects_mail_removal_on_edge_texts(text):
    from langdetect.detector import Detector

    assert L.strip_mail(text) == Detector.MAIL_RE.sub(" ", text)


def test_strip_mail_is_langdetects_mail_removal_on_random_texts():
    """Texts made of local-part, domain and other characters around many "@", with runs
    about the pattern's limits (64 before the "@", 255 per domain part)."""
    from langdetect.detector import Detector

    rng = random.Random(2)
    alphabets = ["ab.-_@ x9Z\u00e9", "a@", "a.@", "a@.b", "ab@ ", "aaa@."]
    changed = 0
    for _ in range(20000):
        t = "".join(rng.choice(rng.choice(alphabets)) for _ in range(rng.choice([3, 10, 40, 200])))
        if rng.random() < 0.2:
            t = "a" * rng.randint(60, 70) + "@" + "b" * rng.randint(250, 260) + "." * rng.randint(0, 3) \
                + "c" * rng.randint(0, 300) + t
        want = Detector.MAIL_RE.sub(" ", t)
        changed += want != t
        assert L.strip_mail(t) == want, t
    assert changed > 5000


def test_clean_precheck_covers_every_text_preclean_changes():
    """The kernel skips ``_preclean`` on texts where ``_may_need_clean`` is false, so it must
    be true wherever cleaning changes the text: URLs, e-mail addresses and the Vietnamese
    marks, among text built to look like them."""
    import random

    from ifrl.constraints.text.unicode import encode_texts

    rng = random.Random(1)
    parts = ["http", "https", ":", "//", "/", "s", "x", " ", "a", "@", "b.c", "_", "-", "\u0300", "\u0301",
             "\u0303", "\u0309", "\u0323", "\u0302", "e", "\u1ea1", "://", "mail@x.org", "A"]
    changed = 0
    texts = ["".join(rng.choice(parts) for _ in range(rng.randint(0, 8))) for _ in range(20000)]
    cps, starts, ends = encode_texts(texts)
    for t, a, b in zip(texts, starts.tolist(), ends.tolist()):
        flagged = L._may_need_clean(cps[a:b])
        if L._preclean(t) != t:
            changed += 1
            assert flagged, t
        if "@" not in t and "://" not in t and not any("\u0300" <= ch <= "\u0323" for ch in t):
            assert not flagged, t
    assert changed > 1000


def test_case_ids_test_the_response_itself_where_cleaning_changes_it():
    """IFEval tests ``str.isupper`` / ``str.islower`` on the response; langdetect then sees
    it without its URLs and e-mail addresses. A lower-case URL in an upper-case response
    fails english_capital; cleaning a response never makes it pass."""
    from ifrl.constraints import verify_batch, verify_reference

    resp = ["THIS IS AN ENGLISH ANSWER, SEE https://example.com/page FOR MORE ABOUT THE WEATHER.",
            "THIS IS AN ENGLISH ANSWER, SEE HTTPS://EXAMPLE.COM/PAGE FOR MORE ABOUT THE WEATHER.",
            "this is an english answer, write to me@example.com about the weather today.",
            "this is an english answer, write to ME@EXAMPLE.COM about the weather today."]
    ids = [["change_case:english_capital"]] * 2 + [["change_case:english_lowercase"]] * 2
    kws = [[{}]] * 4
    got = verify_batch(resp, ids, kws)
    assert got == verify_reference(resp, ids, kws)
    assert got == [[False], [True], [True], [False]]


def test_general_ngram_extraction_equals_the_reference_on_mixed_scripts():
    """The general extraction (hash table, dense tables and unigram rows) lists the
    reference's n-grams on text mixing ASCII with non-ASCII letters in every window
    position: an ASCII 2-gram whose 3-gram window holds a non-ASCII letter is looked up in
    the hash table, an all-ASCII window in the dense tables."""
    import numpy as np

    from ifrl.constraints.text.unicode import encode_texts, tables

    _, keys, _, norm = L.profiles()
    flags, _ = tables()
    table, unigram, code, dense2, dense3, _, _, _ = L.hash_table()
    rng = random.Random(23)
    pieces = ["a", "T", "st", "\u00c4", "\u00e9", "\u0416", "\u0436", "\u4e2d", "\u0915", "\u00df", "ST", " ",
              "  ", ".", "9", "\u1ea1", "\U0001F600", "\u0130"]
    samples = ["".join(rng.choice(pieces) for _ in range(rng.randint(1, 40))) for _ in range(3000)]
    cps, starts, ends = encode_texts(samples)
    buf = np.empty(L.MAX_TEXT + 1, dtype=np.int32)
    got = np.empty(3 * L.MAX_TEXT + 3, dtype=np.int32)
    hashed = 0
    for t, (a, b) in enumerate(zip(starts.tolist(), ends.tolist())):
        n = L._grams_general(cps[a:b], norm, flags, table, unigram, code, dense2, dense3, buf, got)
        grams = L.ngrams_ref(samples[t])
        rows = np.searchsorted(keys, [L.gram_key(g) for g in grams]).astype(np.int32)
        assert n == len(rows) and (got[:n] == rows).all(), repr(samples[t])
        hashed += sum(1 for g in grams if len(g) > 1 and not g.isascii())
    assert hashed > 1000


def test_ascii_ngram_keys_equal_the_general_extraction():
    """The branch-free ASCII extraction (keys, rows via ``arow``) lists the same profile rows
    in the same order as the general path, on texts built to hit its rules: capital words,
    runs of spaces and of punctuation (normalised to spaces), one-letter words, digits, a
    leading or trailing space, and text longer than MAX_TEXT."""
    import numpy as np

    from ifrl.constraints.text.unicode import encode_texts, tables

    _, keys, _, norm = L.profiles()
    flags, _ = tables()
    table, unigram, code, dense2, dense3, acode, aemit, arow = L.hash_table()
    assert arow[0] == -1  # the lone space is never a feature
    present = arow >= 0
    pairs = np.arange(L.N_PAIRS)
    # an n-gram is let out only where the profiles hold it; the rules are the window's
    assert (aemit[L.K2:L.K3] <= present[L.K2:L.K3]).all() and (aemit[L.K3:L.N_AKEYS] <= present[L.K3:]).all()
    assert (aemit[L.N_AKEYS:] <= present[pairs % L.N_SYM]).all()
    assert aemit[L.K2 + 0] == 0 and aemit[L.N_AKEYS + 0] == 0  # space after space
    a_up, b_up, b_low = L.N_SYM * 1, 2, 28  # "A" then "B" / "b"
    assert aemit[L.N_AKEYS + a_up + b_up] == 0 and aemit[L.N_AKEYS + a_up + b_low] == present[b_low]
    rng = random.Random(3)
    pieces = ["a", "I", "AB", "Ab", "aB", "the", "THE", "x", " ", "  ", ".", ", ", "9", "42", "\n", "\t", "-", "zq",
              "ABC", "e.g.", "!?", "'s", "Qu"]
    samples = ["", " ", "a", "A", "AA a", " a ", "ab  cd", "A B C", "..a..", "X" * 5] + [
        "".join(rng.choice(pieces) for _ in range(rng.randint(1, 60))) for _ in range(3000)]
    samples.append(("Word WORD word, " * 800)[: L.MAX_TEXT + 37])
    cps, starts, ends = encode_texts(samples)
    g_ascii = np.empty(3 * L.MAX_TEXT + 3, dtype=np.int32)
    g_general = np.empty_like(g_ascii)
    buf = np.empty(L.MAX_TEXT + 1, dtype=np.int32)
    for t, (a, b) in enumerate(zip(starts.tolist(), ends.tolist())):
        n1 = L._grams_ascii(cps[a:b], acode, aemit, g_ascii)
        n2 = L._grams_general(cps[a:b], norm, flags, table, unigram, code, dense2, dense3, buf, g_general)
        assert n1 == n2 and (arow[g_ascii[:n1]] == g_general[:n2]).all(), repr(samples[t][:80])
        if t % 10 == 0:  # and the reference extraction's n-grams, row for row
            rows = np.searchsorted(keys, [L.gram_key(g) for g in L.ngrams_ref(samples[t])]).astype(np.int32)
            assert (arow[g_ascii[:n1]] == rows).all(), repr(samples[t][:80])
    assert len(L.ngrams_ref(samples[-1])) == n1 > 0


def test_typographic_punctuation_takes_the_ascii_extraction_with_the_same_rows():
    """Text that is ASCII but for code points langdetect normalises to a space (curly
    quotes, dashes, no-break space, bullets, ellipsis) goes through the ASCII extraction
    (``_as_ascii``), and lists the general path's rows in the same order, with runs of
    those code points and of spaces, at the text's ends, and past MAX_TEXT. Text with any
    other non-ASCII code point, or whose Latin letters are the minority the general path
    drops, does not; detection then agrees with the reference on both kinds."""
    from ifrl.constraints.text.unicode import encode_texts, tables

    _, _, _, norm = L.profiles()
    flags, _ = tables()
    table, unigram, code, dense2, dense3, acode, aemit, arow = L.hash_table()
    spaced = [c for c in range(128, 0x10000) if norm[c] < 128]
    assert len(spaced) == 116 and all(norm[c] == 32 for c in spaced)  # the docstring's count
    rng = random.Random(11)
    marks = ["\u2019", "\u201c", "\u201d", "\u2014", "\u2013", "\u00a0", "\u2022", "\u2026", "\u00b0"]
    pieces = ["the", "THE", "Don", "t", "I", " ", "  ", ".", "\n", "ab"] + marks
    near = ["".join(rng.choice(pieces) for _ in range(rng.randint(1, 60))) for _ in range(1500)]
    near += ["\u2019", "\u2014the\u2014", "A\u2019B", "\u2014" * 3 + "ab",
             ("Don\u2019t \u2014 STOP now. " * 500)[: L.MAX_TEXT + 11]]
    other = ["caf\u00e9 au lait", "ok \U0001F600 ok", "\u2014" * 30 + "ab", "5 \u00d7 3 \u2014 ok"]
    cps, starts, ends = encode_texts(near + other)
    out = np.empty(L.MAX_TEXT + 20, dtype=np.uint8)
    keys = np.empty(3 * L.MAX_TEXT + 3, dtype=np.int32)
    rows = np.empty_like(keys)
    buf = np.empty(L.MAX_TEXT + 20, dtype=np.int32)
    taken = 0
    for t, (a, b) in enumerate(zip(starts.tolist(), ends.tolist())):
        n_as = L._as_ascii(cps[a:b], norm, out)
        if t >= len(near):
            assert n_as == -1, repr((near + other)[t])
            continue
        n2 = L._grams_general(cps[a:b], norm, flags, table, unigram, code, dense2, dense3, buf, rows)
        if n_as < 0:  # only a Latin minority (many dashes, few letters) may refuse
            latin = sum(65 <= ord(c) <= 122 for c in near[t][: L.MAX_TEXT])
            assert latin * 2 < sum(ord(c) >= 0x300 for c in near[t][: L.MAX_TEXT]), repr(near[t])
            continue
        taken += 1
        n1 = L._grams_ascii(out[:n_as], acode, aemit, keys)
        assert n1 == n2 and (arow[keys[:n1]] == rows[:n2]).all(), repr(near[t][:80])
    assert taken > 1400
    picked = near[:100:4] + near[-5:] + other
    assert L.detect_batch(picked) == [L.detect_ref(x) for x in picked]


def test_neumaier_sum_is_this_pythons_sum_from_3_12():
    """``neumaier_sum`` is CPython 3.12+'s float ``sum()``; the kernel's switch follows the
    running interpreter."""
    import sys

    rng = random.Random(5)
    cases = [[0.1] * 10, [1e16, 1.0, -1e16], [3.0], []] + [
        [rng.random() * 10.0 ** rng.randint(-30, 3) for _ in range(rng.randint(1, 60))] for _ in range(2000)]
    assert L.neumaier_sum([0.1] * 10) == 1.0 and _plain_sum([0.1] * 10) == 0.9999999999999999
    assert L.neumaier_sum([1e16, 1.0, -1e16]) == 1.0 and L.neumaier_sum([]) == 0.0
    assert L.COMPENSATED_SUM == (sys.version_info >= (3, 12))
    model = L.neumaier_sum if L.COMPENSATED_SUM else _plain_sum
    assert all(model(xs) == sum(xs) for xs in cases)


@pytest.mark.parametrize("compensated", [False, True])
def test_langdetect_kernel_sums_as_the_interpreter_would(texts, monkeypatch, compensated):
    """The kernel's normalising sum, plain (Python <= 3.11) and compensated (3.12+), equals
    the reference's with the same sum, whichever Python runs the tests."""
    monkeypatch.setattr(L, "COMPENSATED_SUM", compensated)
    monkeypatch.setattr(L, "_SUM", L.neumaier_sum if compensated else _plain_sum)
    sample = texts[::6] + EDGE_TEXTS
    assert L.detect_batch(sample) == [L.detect_ref(t) for t in sample]


def _plain_sum(xs):
    """Python <= 3.11's ``sum()``: a plain left-to-right total."""
    total = 0
    for x in xs:
        total += x
    return total


def test_capital_counts_without_punkt_equal_nltk_on_built_texts(official):
    """Texts where no sentence break can fall inside a chunk are counted as one sentence
    (``_capital_whole``); on texts built from capital words, sentence ends followed by
    every kind of character, closers, "--", contractions and quotes, both paths equal
    ``nltk.word_tokenize``, and the one-sentence path takes a good share of them."""
    import nltk
    import numpy as np

    from ifrl.constraints.engine_kernels import _capital_whole, capital_counts_batch
    from ifrl.constraints.text.unicode import encode_texts, tables

    rng = random.Random(11)
    pieces = ["WORD", "Word", "word", "I", "A", "U.S.", "CAN'T", "don't", "IT'S", "GONNA", "e.g.", "NASA's", "OK",
              ".", "?", "!", "...", "?!", ",", ";", ":", "\"", "'", ")", "(", "]", "--", "-", "\u201c", "\u201d",
              "\u2019", "@", "*", "9", "3.5"]
    seps = [" ", " ", " ", "", "\n", "  ", "\t"]
    samples = ["".join(rng.choice(pieces) + rng.choice(seps) for _ in range(rng.randint(1, 25))) for _ in range(2500)]
    samples += ['END. ")--NEXT', 'END. ")-- NEXT', "END.\u201d--NEXT", "STOP.)GO", "STOP. GO", "A.B. C", "WHY?!NOW"]
    want = [sum(1 for w in nltk.word_tokenize(t) if w.isupper()) for t in samples]
    assert capital_counts_batch(samples) == want
    from ifrl.constraints.text.punkt_fast import model_arrays

    flags, _ = tables()
    cps, starts, ends = encode_texts(samples)
    per = np.empty(len(samples), dtype=np.int64)
    _capital_whole(cps, starts, ends, model_arrays()[-1], flags, per)
    assert (per >= 0).sum() > len(samples) // 4 and (per == -2).sum() > len(samples) // 4
    assert per[-6] == -2 and per[-4] == -2 and per[-3] >= 0  # "--" after closers, ".)", a plain break


def _assert_spans_equal_reference_and_nltk(samples):
    """The kernel's spans of ``samples`` equal the reference's, which equal NLTK's; returns them."""
    from nltk.tokenize import PunktTokenizer

    tok = PunktTokenizer("english")
    ref = [punkt.sentence_spans_ref(t) for t in samples]
    assert punkt_fast.sentence_spans_batch(samples) == ref
    assert ref == [list(tok.span_tokenize(t)) for t in samples]
    return ref


def test_punkt_shortcuts_equal_nltk_on_built_texts(official):
    """The kernel decides "?"/"!" candidates without annotating their context, and reads
    "A. B" contexts without the general tokenizer; on texts built to hit both (and the
    abbreviations, initials, numbers, ellipses and closers around them) its spans equal
    the reference's and NLTK's."""
    rng = random.Random(13)
    pieces = ["word", "Word", "WORD", "Dr.", "e.g.", "U.S.", "J.", "3.", "No.", "etc.", "vs.", "Inc.", "x", "I",
              ".", "?", "!", "?!", "...", ". . .", ")", "(", "\"", "'", "\u201d", ",", ";", "--", "42", "a1"]
    seps = [" ", " ", " ", "", "\n", "\n\n", "  ", "\t"]
    samples = ["".join(rng.choice(pieces) + rng.choice(seps) for _ in range(rng.randint(1, 40))) for _ in range(2500)]
    samples += ["Why? No! Yes.", "A. B", "end.  Next", "Go?!  Now", "Is it? (yes) ok.", "3. Four. 5? Six!"]
    _assert_spans_equal_reference_and_nltk(samples)


def test_punkt_sentence_starts_equal_nltk_around_every_kind_of_whitespace(official):
    """A sentence's start is the last ASCII whitespace between the previous break candidate
    and this one (the kernel searches back for it from each candidate): texts built from
    runs without whitespace, non-ASCII spaces (which do not count), tabs, line breaks and
    candidates at the very start or end get NLTK's spans."""
    rng = random.Random(19)
    pieces = ["a", "B", "x.y", "3.5", ".", "?", "!", ".)", "!\"", "...", "Dr.", "U.S.", "(", "word", "WORD"]
    seps = ["", "", " ", "\t", "\n", "\r\n", "\u00a0", "\u3000", "\u2003", "  ", "\x0b", "\x0c"]
    samples = ["".join(rng.choice(pieces) + rng.choice(seps) for _ in range(rng.randint(1, 30))) for _ in range(2500)]
    samples += [". A. b", "?x! Y", "a.b.c.d.e. F", "x.\u00a0Y. z", "x.\u3000Y z. W", "end.", " .", "a.\t\tB.\nC"]
    _assert_spans_equal_reference_and_nltk(samples)


def test_punkt_next_type_lookups_equal_nltk_on_built_texts(official):
    """The second pass's rules (the collocation test, the orthographic heuristics after
    abbreviations, ellipses, initials and numbers, sentence starters): texts built from
    those tokens, before collocation partners, sentence starters and words of every
    orthographic context in every case, get NLTK's spans."""
    m = punkt.english_model()
    rng = random.Random(17)
    seconds = sorted({b for _, b in m.collocations})
    starters = sorted(m.sent_starters)
    ortho = sorted(m.ortho_context)
    before = ["3.", "42.", "1.5.", "B.", "b.", "J.", "x.", "Dr.", "e.g.", "etc.", "Inc.", "vs.", "...", ". . .",
              "word.", "Word.", "WORD.", "end?", "no!", "pay-fone."]

    def nxt():
        w = rng.choice(seconds + starters + [rng.choice(ortho) for _ in range(4)] + ["the", "xyzzy", "42", ","])
        return rng.choice([w, w.capitalize(), w.upper()])
    samples = []
    for _ in range(2500):
        parts = []
        for _ in range(rng.randint(1, 12)):
            parts += [rng.choice(before), rng.choice([" ", "  ", "\n", " (", ' "']), nxt(), rng.choice([" ", ". ", ".\n"])]
        samples.append("".join(parts))
    ref = _assert_spans_equal_reference_and_nltk(samples)
    # the built texts reach both outcomes of the heuristics: breaks kept and breaks removed
    assert sum(len(r) for r in ref) > 2 * len(samples)
    assert any(len(r) == 1 for r, t in zip(ref, samples) if t.count(". ") >= 2)


@pytest.mark.parametrize("words", [8, 300])
def test_langdetect_redo_when_the_precomputed_stream_runs_out(texts, monkeypatch, words):
    """With only a few precomputed Mersenne Twister outputs, texts run out mid-trial (or in
    the Gaussian draw) and are run again on a doubled stream; detection is unchanged."""
    monkeypatch.setattr(L, "STREAM_WORDS", words)
    monkeypatch.setattr(L, "_STREAMS", {})
    sample = texts[::9] + EDGE_TEXTS
    assert L.detect_batch(sample) == [L.detect_ref(t) for t in sample]
    assert L._STREAMS[L.SEED].shape[0] > words  # the stream was extended


def _mixed_script_texts(rows, n, seed):
    """Pieces of English and of non-Latin responses glued together: the leading language
    changes along the text, so retired languages grow back and trials run long."""
    rng = random.Random(seed)
    latin = [r["response"] for r in rows if r["response"].isascii()]
    other = [r["response"] for r in rows if sum(ord(c) > 127 for c in r["response"]) > len(r["response"]) // 3]
    out = []
    for _ in range(n):
        parts = []
        for _ in range(rng.randint(2, 8)):
            src = rng.choice(other if rng.random() < 0.5 else latin)
            a = rng.randrange(len(src))
            parts.append(src[a:a + rng.randint(3, 200)])
        out.append(" ".join(parts))
    return out


# texts of one or two n-grams: their trials never converge and run ITERATION_LIMIT draws
SHORT_TEXTS = ["A", "I", "a", "ok", "OK", "x y", "Ja", "e", "\u0416", "\u4e2d", "A A A", "hi", "zz"]


@pytest.mark.parametrize("level", ["off", "test"])
def test_langdetect_retired_languages_change_no_result(texts, ifeval_rows, monkeypatch, level):
    """Retiring languages (``RETIRE_BELOW``) gives the reference's detection and the same
    verdicts with retiring off, and with every check failing, so that each trial that
    retired a language is resumed without retiring (REDO_TRIAL): on IFEval responses, fuzzed
    ones, texts that mix scripts and texts whose trials run ITERATION_LIMIT draws."""
    sample = texts[::4] + SHORT_TEXTS + _mixed_script_texts(ifeval_rows, 120, 19)
    want = [L.detect_ref(t) for t in sample]
    en = ["en"] * len(sample)
    assert L.detect_batch(sample) == want
    on = L.is_language_batch(sample, en)
    monkeypatch.setattr(L, "RETIRE", L.RETIRE_OFF if level == "off" else L.RETIRE_TEST)
    assert L.detect_batch(sample) == want
    assert L.is_language_batch(sample, en) == on


def test_langdetect_retired_languages_keep_the_mean_probabilities(texts, ifeval_rows):
    """The kernel's mean probabilities (``saved[:nl]``): bit for bit langdetect's with every
    trial resumed (RETIRE_TEST), and within APPROX_TOTAL (retired languages add 0) with
    retiring on. Retiring languages that still matter (RETIRE_WIDE, below 2**-20) is caught
    by the checks, which then fail on many trials."""
    import numpy as np

    langs, _, prob, _ = L.profiles()
    acode, aemit, arow = L.hash_table()[5:8]
    stream = L.mt_stream(L.SEED)
    acc = np.empty(stream.shape[0], dtype=np.uint32)
    accp = np.empty(stream.shape[0], dtype=np.int64)
    saved = np.empty(L.ROW + 8)
    sample = texts[::4] + SHORT_TEXTS + _mixed_script_texts(ifeval_rows, 120, 19)
    resumed = caught = 0
    for t in [s for s in sample if s.isascii()][:150] + ["A"]:
        cps = np.frombuffer(t.encode("ascii"), dtype=np.uint8).astype(np.uint32)
        grams = np.empty(3 * len(t) + 3, dtype=np.int32)
        ng = L._grams_ascii(cps, acode, aemit, grams)
        if ng == 0:
            continue
        args = (grams, ng, arow, True, prob, len(langs), stream, -1, L.COMPENSATED_SUM, acc, accp)

        def run(level):
            """The trials at ``level``, resumed without retiring where asked (as
            ``_detect_many`` does); the result and whether it was resumed."""
            r = L._trials(*args, level, saved, False)
            if r != L.REDO_TRIAL:
                return r, 0
            return L._trials(*args, L.RETIRE_OFF, saved, True), 1

        exact, _ = run(L.RETIRE_OFF)
        want = saved[: len(langs)].copy()
        if L.COMPENSATED_SUM:  # retiring needs the in-order sum
            continue
        r, n = run(L.RETIRE_TEST)
        resumed += n
        assert r == exact and saved[: len(langs)].tobytes() == want.tobytes(), t[:80]
        # languages retired while they still matter: the checks must catch it
        r, n = run(L.RETIRE_WIDE)
        caught += n
        assert r in (exact, L.REDO_EXACT), t[:80]
        assert np.all(np.abs(saved[: len(langs)] - want) <= L.APPROX_TOTAL), t[:80]
        assert L._trials(*args, L.RETIRE_ON, saved, False) in (exact, L.REDO_EXACT), t[:80]
        assert np.all(want - L.APPROX_TOTAL <= saved[: len(langs)]) and np.all(saved[: len(langs)] <= want), t[:80]
    assert L.COMPENSATED_SUM or (resumed > 40 and caught > 40)
