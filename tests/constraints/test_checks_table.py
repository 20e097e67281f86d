"""Table-driven verdicts per constraint id, each case named for the edge it covers.

Every case is checked through the batch engine (fast paths) and the plain reference."""

import pytest

from ifrl.constraints import verify_batch, verify_reference

BIG = ("All work and no play. " * 48000)[:1_000_000]  # ~1 MB response

CASES = [
    # (name, id, kwargs, response, strict verdict)
    ("comma_present", "punctuation:no_comma", {}, "a, b", False),
    ("no_comma", "punctuation:no_comma", {}, "a b", True),
    ("fullwidth_comma_is_not_comma", "punctuation:no_comma", {}, "a，b", True),
    ("empty_response_fails", "punctuation:no_comma", {}, "", False),
    ("whitespace_response_fails", "punctuation:no_comma", {}, " \n\t ", False),
    ("one_mb_no_comma", "punctuation:no_comma", {}, BIG, True),
    ("quoted", "startend:quotation", {}, ' "hi there" \n', True),
    ("single_quote_char", "startend:quotation", {}, '"', False),
    ("unbalanced_quote", "startend:quotation", {}, '"hi', False),
    ("end_phrase_case_and_quotes", "startend:end_checker", {"end_phrase": "Any other questions?"},
     'Text.\r\nany other QUESTIONS?"', True),
    ("end_phrase_followed_by_text", "startend:end_checker", {"end_phrase": "Any other questions?"},
     "Any other questions? Bye", False),
    ("two_responses_ok", "combination:two_responses", {}, "A\n******\nB", True),
    ("two_responses_same", "combination:two_responses", {}, "A\n******\n A ", False),
    ("two_responses_blank_middle", "combination:two_responses", {}, "A******   ******B", False),
    ("repeat_prompt_ok", "combination:repeat_prompt", {"prompt_to_repeat": "Write a Poem."}, "  write a poem. ok", True),
    ("repeat_prompt_missing", "combination:repeat_prompt", {"prompt_to_repeat": "Write a poem."}, "A poem", False),
    ("placeholders_two", "detectable_content:number_placeholders", {"num_placeholders": 2}, "[a] and [b]", True),
    ("placeholder_across_newline_not_counted", "detectable_content:number_placeholders", {"num_placeholders": 2},
     "[a\n] [b]", False),
    ("postscript_ps", "detectable_content:postscript", {"postscript_marker": "P.S."}, "Hi\n\np. s. later", True),
    ("postscript_pps_spaced", "detectable_content:postscript", {"postscript_marker": "P.P.S"}, "x\nP. P. S note", True),
    ("postscript_absent", "detectable_content:postscript", {"postscript_marker": "P.S."}, "PS later", False),
    ("bullets_star_and_dash", "detectable_format:number_bullet_lists", {"num_bullets": 3}, "* a\n- b\n  * c\n**d**", True),
    ("bullets_crlf", "detectable_format:number_bullet_lists", {"num_bullets": 2}, "* a\r\n* b\r\n", True),
    ("bullets_too_many", "detectable_format:number_bullet_lists", {"num_bullets": 1}, "* a\n* b", False),
    ("constrained_yes", "detectable_format:constrained_response", {}, "My answer is yes.", True),
    ("constrained_other", "detectable_format:constrained_response", {}, "My answer is Yes.", False),
    ("highlights_single_and_double", "detectable_format:number_highlighted_sections", {"num_highlights": 2},
     "*one* and **two**", True),
    ("highlight_blank_not_counted", "detectable_format:number_highlighted_sections", {"num_highlights": 1},
     "*  * text", False),
    ("sections_three", "detectable_format:multiple_sections", {"section_spliter": "Section", "num_sections": 3},
     "Section 1\na\nSection 2\nb\nSection 3\nc", True),
    ("sections_lowercase_not_counted", "detectable_format:multiple_sections",
     {"section_spliter": "Section", "num_sections": 2}, "section 1 a section 2 b", False),
    ("json_fenced", "detectable_format:json_format", {}, '```json\n{"a": [1, 2]}\n```', True),
    ("json_broken", "detectable_format:json_format", {}, '{"a": }', False),
    ("title_present", "detectable_format:title", {}, "<<My Title>>\ntext", True),
    ("title_blank", "detectable_format:title", {}, "<<  >>\ntext", False),
    ("keywords_all_present_case_insensitive", "keywords:existence", {"keywords": ["Apple", "pie"]}, "APPLE PIE", True),
    ("keywords_one_missing", "keywords:existence", {"keywords": ["apple", "cake"]}, "apple pie", False),
    ("keywords_non_ascii_text", "keywords:existence", {"keywords": ["café"]}, "Un CAFÉ noir 😀", True),
    ("frequency_at_least", "keywords:frequency", {"keyword": "the", "frequency": 3, "relation": "at least"},
     "The theme of the day", True),
    ("frequency_less_than", "keywords:frequency", {"keyword": "the", "frequency": 3, "relation": "less than"},
     "The theme of the day", False),
    ("forbidden_substring_ok", "keywords:forbidden_words", {"forbidden_words": ["cat"]}, "concatenate", True),
    ("forbidden_whole_word", "keywords:forbidden_words", {"forbidden_words": ["cat"]}, "a CAT sat", False),
    ("letter_frequency_case_insensitive", "keywords:letter_frequency",
     {"letter": "A", "let_frequency": 3, "let_relation": "at least"}, "Aa a", True),
    ("letter_frequency_less", "keywords:letter_frequency",
     {"letter": "z", "let_frequency": 1, "let_relation": "less than"}, "no such letter", True),
    ("words_at_least", "length_constraints:number_words", {"num_words": 3, "relation": "at least"}, "one, two-three", True),
    ("words_unicode_letters", "length_constraints:number_words", {"num_words": 3, "relation": "less than"},
     "naïve café 😀 ok", False),
    ("words_one_mb", "length_constraints:number_words", {"num_words": 100000, "relation": "at least"}, BIG, True),
    ("sentences_abbrev", "length_constraints:number_sentences", {"num_sentences": 2, "relation": "less than"},
     "Dr. Smith met Mr. Jones at 5 p.m. today.", True),
    ("sentences_three", "length_constraints:number_sentences", {"num_sentences": 3, "relation": "at least"},
     "One. Two! Three?", True),
    ("sentences_one_mb", "length_constraints:number_sentences", {"num_sentences": 1000, "relation": "at least"},
     BIG[:200_000], True),
    ("paragraphs_three", "length_constraints:number_paragraphs", {"num_paragraphs": 3}, "a\n***\nb\n***\nc", True),
    ("paragraphs_empty_middle", "length_constraints:number_paragraphs", {"num_paragraphs": 2}, "a\n***\n***\nb", False),
    ("paragraphs_no_divider", "length_constraints:number_paragraphs", {"num_paragraphs": 1}, "just text", True),
    ("nth_first_word", "length_constraints:nth_paragraph_first_word",
     {"num_paragraphs": 2, "nth_paragraph": 2, "first_word": "Then"}, "First.\n\n\"Then, more.", True),
    ("nth_first_word_wrong_count", "length_constraints:nth_paragraph_first_word",
     {"num_paragraphs": 3, "nth_paragraph": 2, "first_word": "then"}, "First.\n\nThen more.", False),
    ("capital_words", "change_case:capital_word_frequency", {"capital_frequency": 3, "capital_relation": "at least"},
     "I LOVE NASA. DON'T stop.", True),
    ("capital_words_none", "change_case:capital_word_frequency", {"capital_frequency": 1, "capital_relation": "less than"},
     "all lower case here.", True),
    ("english_capital", "change_case:english_capital", {}, "THIS IS AN ENGLISH SENTENCE ABOUT THE WEATHER.", True),
    ("english_capital_has_lower", "change_case:english_capital", {}, "THIS IS An ENGLISH SENTENCE.", False),
    ("english_lowercase", "change_case:english_lowercase", {}, "this is an english sentence about the weather.", True),
    ("english_lowercase_but_german", "change_case:english_lowercase", {},
     "das ist ein deutscher satz über das wetter und die stadt.", False),
    ("language_german", "language:response_language", {"language": "de"},
     "Das ist ein deutscher Satz über das Wetter und die Stadt.", True),
    ("language_no_letters_passes", "language:response_language", {"language": "de"}, "12345 !!!", True),
    ("language_emoji_only_passes", "language:response_language", {"language": "fr"}, "😀😀😀", True),
    ("light_boxed_equal", "light", {"answer": "x + 1"}, "so \\boxed{2} no, \\boxed{ x  +\n1 }", True),
    ("light_nested_braces", "light", {"answer": "\\frac{1}{2}"}, "\\boxed{\\frac{1}{2}}", True),
    ("light_missing_box", "light", {"answer": "2"}, "the answer is 2", False),
    ("light_choice_letter", "light_choice", {"answer": "B"}, "I pick \\boxed{(b)}", True),
    ("light_choice_text_wrap", "light_choice", {"answer": "(C)"}, "\\boxed{\\text{C}}", True),
    ("light_choice_wrong", "light_choice", {"answer": "B"}, "\\boxed{A}", False),
    ("no_repetition_ok", "quality:no_repetition", {}, "One two.\nThree four!", True),
    ("no_repetition_line_repeated", "quality:no_repetition", {}, "*One two*\nSomething else. one, TWO.", False),
]


@pytest.mark.parametrize("mode", ["strict", "loose"])
def test_table_batch_equals_reference(mode):
    resp = [c[3] for c in CASES]
    ids = [[c[1]] for c in CASES]
    kws = [[c[2]] for c in CASES]
    fast = verify_batch(resp, ids, kws, mode=mode)
    ref = verify_reference(resp, ids, kws, mode=mode)
    assert fast == ref
    if mode == "strict":
        got = {c[0]: v[0] for c, v in zip(CASES, fast)}
        want = {c[0]: c[4] for c in CASES}
        assert got == want


def test_every_id_has_a_case():
    from ifrl.constraints import known_ids

    assert {c[1] for c in CASES} == set(known_ids())


def test_loose_drops_first_line_and_stars():
    # strict fails (first line breaks the quotes), loose passes by dropping it
    r = 'Sure, here it is:\n"all quoted"'
    assert verify_batch([r], [["startend:quotation"]], [[{}]], mode="strict") == [[False]]
    assert verify_batch([r], [["startend:quotation"]], [[{}]], mode="loose") == [[True]]
    r2 = "**My answer is yes.**"
    assert verify_batch([r2], [["startend:end_checker"]], [[{"end_phrase": "yes."}]], mode="loose") == [[True]]


def test_loose_checks_each_distinct_variant_once(monkeypatch):
    """Loose mode checks equal variants once (any variant passing is enough): a one-line
    response without "*" has one non-blank variant; a two-line one with "*" has five (its
    "without both lines" is blank)."""
    from ifrl.constraints.registry import registry

    spec = registry()["punctuation:no_comma"]
    seen = []
    check = spec.check
    monkeypatch.setattr(spec, "batch", lambda texts, kws: [seen.append(t) or check(t, k) for t, k in zip(texts, kws)])
    resp = ["one line and no star", "*first* line\nsecond line"]
    got = verify_batch(resp, [["punctuation:no_comma"]] * 2, [[{}]] * 2, mode="loose")
    assert got == verify_reference(resp, [["punctuation:no_comma"]] * 2, [[{}]] * 2, mode="loose") == [[True], [True]]
    assert seen.count("one line and no star") == 1 and len(seen) == 1 + 5
    assert len(set(seen)) == len(seen)


def test_substring_fast_paths_equal_regex_on_random_text():
    """The str.find versions of the ``***`` split and the section count against ``re``."""
    import random
    import re

    from ifrl.constraints.families.detectable_format import count_sections
    from ifrl.constraints.families.length_constraints import split_dividers

    rng = random.Random(3)
    alphabet = [" ", "\n", "\t", "*", "**", "***", "Section", "Sec", "1", "23", "x", "\u00a0", "\u0663"]
    for _ in range(3000):
        t = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 14)))
        assert split_dividers(t) == re.split(r"\s?\*\*\*\s?", t), repr(t)
        assert count_sections(t, "Section") == len(re.split(r"\s?Section\s?\d+\s?", t)) - 1, repr(t)


def test_keyword_kernel_equals_regex_on_random_text():
    """The three keyword ids' numba pass (``keyword_kernels``) against their regex
    references: case flips, words that start or end in non-word characters, non-ASCII word
    and non-word characters next to a match, texts past one filter block (64 positions),
    and texts holding a character that case-folds to ASCII (those go to the reference)."""
    import random

    from ifrl.constraints.families.keywords import _keyword_ids_batch, existence, forbidden_words, frequency

    rng = random.Random(11)
    alphabet = [" ", "\n", "_", "-", ".", "'", "a", "b", "ab", "ba", "A", "AB", "1", "x", "\u00e9", "\u00c9",
                "\u00df", "\u0663", "\u2014", "\U0001f600", "abab" * 9, "\u212a", "\u0131", "Z", "z@", "\u0161"]
    words = ["a", "ab", "AB", "b_", "_", "1a", "ab.", "-a", "a'b", "aba", "bab", "ababab", "a.b", "\u00e9a", "k", "z",
             "@"]
    ids, texts, kws = [], [], []
    for _ in range(3000):
        t = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 50)))
        iid = rng.choice(("keywords:existence", "keywords:frequency", "keywords:forbidden_words"))
        ws = rng.sample(words, rng.randint(1, 3))
        if iid == "keywords:existence":
            kw = {"keywords": ws}
        elif iid == "keywords:frequency":
            kw = {"keyword": ws[0], "frequency": rng.randint(1, 12), "relation": rng.choice(("less than", "at least"))}
        else:
            kw = {"forbidden_words": ws}
        ids.append(iid)
        texts.append(t)
        kws.append(kw)
    ref = {"keywords:existence": existence, "keywords:frequency": frequency, "keywords:forbidden_words": forbidden_words}
    want = [ref[i](t, kw) for i, t, kw in zip(ids, texts, kws)]
    got = _keyword_ids_batch(ids, texts, kws)
    bad = [(i, t, kw) for i, t, kw, g, w in zip(ids, texts, kws, got, want) if g != w]
    assert not bad, bad[:3]
    assert 0.2 < sum(want) / len(want) < 0.8  # both verdicts are common
    assert sum(len(t) > 64 for t in texts) > 1000  # the block filter runs


def test_ascii_fold_facts_behind_the_keyword_fast_paths():
    """The facts ``keywords.ascii_fold_safe`` rests on, over every code point."""
    import re
    import string

    from ifrl.constraints.families.keywords import FOLDS_TO_ASCII

    printable = "".join(c for c in string.printable if c not in string.whitespace)
    pat = re.compile("[" + re.escape(printable) + "]", re.IGNORECASE)
    chars = [chr(c) for c in range(128, 0x110000) if not 0xD800 <= c <= 0xDFFF]
    assert tuple(c for c in chars if pat.fullmatch(c)) == FOLDS_TO_ASCII
    assert [c for c in chars if len(c.lower()) != 1] == ["\u0130"]

    def word(c):
        return c.isalnum() or c == "_"

    assert not [c for c in chars if c != "\u0130" and word(c) != word(c.lower())]
    # the keyword kernel reads every other non-ASCII code point as matching no ASCII byte
    assert not [c for c in chars if c not in FOLDS_TO_ASCII and any(x.isascii() for x in c.lower())]


def test_highlight_count_equals_regex_on_random_text():
    """detectable_format:number_highlighted_sections' numba count against the regexes: the
    same count, stopping at the same place."""
    import random

    from ifrl.constraints.engine_kernels import count_highlights_batch
    from ifrl.constraints.families.detectable_format import highlight_count

    rng = random.Random(5)
    alphabet = ["*", "**", "***", " ", "\n", "a", "b c", "\t", "\u00a0"]
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 14))) for _ in range(5000)]
    want = [highlight_count(t) for t in texts]
    assert max(want) >= 3  # the texts reach every stopping point below
    for need in (1, 2, 3, 99):
        assert count_highlights_batch(texts, [need] * len(texts)).tolist() == [min(w, need) for w in want], need


def test_json_start_precheck_matches_json_loads():
    """detectable_format:json_format rejects without parsing only what json.loads rejects."""
    import json

    from ifrl.constraints.families.detectable_format import _JSON_STARTS

    for c in map(chr, range(0x250)):
        for tail in ("", "1", '"x"', "]", "}", " 1"):
            try:
                json.loads(c + tail)
                ok = True
            except ValueError:
                ok = False
            if ok:
                assert c in _JSON_STARTS or c.isspace(), repr(c + tail)


def test_placeholder_count_equals_regex_on_random_text():
    import random
    import re

    from ifrl.constraints.families.detectable_content import count_placeholders

    rng = random.Random(6)
    alphabet = ["[", "]", "[]", "x", "\n", " ", "][", "\r"]
    for _ in range(5000):
        t = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 14)))
        want = len(re.findall(r"\[.*?\]", t))
        for need in (1, 2, 3, 99):
            assert count_placeholders(t, need) == min(want, need), (t, need)


def test_head_and_tail_fast_paths_equal_reference_on_random_text():
    """end_checker, repeat_prompt, letter_frequency and two_responses batch paths (ASCII
    shortcuts, non-ASCII fallbacks) against their reference checks."""
    import random

    from ifrl.constraints.registry import many_validator, registry

    rng = random.Random(8)
    alphabet = [" ", "\n", "\t", "\x1c", '"', "a", "A", "ab", "Ab", "k", "K", "i", "I", "\u0130", "\u212a",
                "\u00a0", ".", "******", "***", "x y"]
    cases = [("startend:end_checker", lambda: {"end_phrase": rng.choice(["ab", "k", "A b", "i.", "\u0130"])}),
             ("combination:repeat_prompt", lambda: {"prompt_to_repeat": rng.choice(["ab", "K", " a b ", "i\u0130"])}),
             ("keywords:letter_frequency", lambda: {"letter": rng.choice("akiK.\u0130"), "let_frequency": rng.randint(1, 3),
                                                   "let_relation": rng.choice(["less than", "at least"])}),
             ("combination:two_responses", lambda: {})]
    for iid, draw in cases:
        spec = registry()[iid]
        texts, kws = [], []
        for _ in range(3000):
            t = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 10)))
            if t.strip():
                texts.append(t)
                kws.append(many_validator(spec)([draw()])[0])
        want = [spec.check(t, k) for t, k in zip(texts, kws)]
        assert spec.batch(texts, kws) == want, iid
        assert any(want) and not all(want), iid  # the cases reach both verdicts
