"""quality:no_repetition — table of named edge cases, both modes, through the public API."""

import pytest

from ifrl import constraints as C
from ifrl.constraints.families.quality import repeated_piece

CASES = [
    ("distinct_sentences", "The cat sat. The dog ran. Birds sing!", True),
    ("same_sentence_twice", "The cat sat. The cat sat.", False),
    ("case_and_punctuation_ignored", "The cat sat!\nthe CAT sat?", False),
    ("markup_ignored", "*highlighted section*\n\n*Highlighted section*", False),
    ("title_markup_ignored", "<<My Day>>\nMy day.", False),
    ("one_word_pieces_ignored", "1. Apples are red.\n1. Pears are green.", True),
    ("abbreviation_pieces_ignored", "Bring e.g. tools. Take e.g. spoons.", True),
    ("postscript_loop", "P.S. I hope this helps.\n\nP.S. I hope this helps.", False),
    ("repeat_far_apart", "Alpha beta. Gamma delta. Epsilon zeta. Alpha beta.", False),
    ("substring_is_not_repeat", "I like tea. I like tea a lot.", True),
    ("windows_newlines", "Line one here\r\nLine one here", False),
    ("emoji_and_non_ascii", "Café au lait 😀. Crème brûlée 😀.", True),
    ("single_line", "Just one line of text", True),
]


@pytest.mark.parametrize("name,text,expected", CASES, ids=[c[0] for c in CASES])
def test_no_repetition_table(name, text, expected):
    assert (repeated_piece(text) is None) is expected
    for mode in ("strict", "loose"):
        (verdict,), = C.verify_batch([text], [["quality:no_repetition"]], [[{}]], mode=mode)
        if mode == "strict":
            assert verdict is expected
        else:  # loose passes if any variant (first/last line dropped, '*' removed) passes
            assert verdict in (True, expected)


def test_empty_response_fails():
    assert C.verify_batch([""], [["quality:no_repetition"]], [[{}]]) == [[False]]


def test_not_an_ifeval_id():
    assert "quality:no_repetition" in C.known_ids() and "quality:no_repetition" not in C.ifeval_ids()
