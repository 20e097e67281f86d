"""How the dataset builder samples and phrases each hard constraint.

One ``HardSpec`` per verifier id: a sampler for its kwargs in sensible ranges, the English
sentences that ask for it (several phrasings, so a policy cannot key on one string), and the
ids it must not be combined with. The kwargs names are the verifier's (IFEval's); phrasing
and ranges are ours.

``response_words`` scales every length-like argument to the answer length the data is meant
for: a 64-token CPU demo cannot write 300 words, a 7B model with 8k tokens can.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Callable

__all__ = ["HardSpec", "SPECS", "DEFAULT_IDS", "conflicts", "describe", "sample_kwargs"]

# Word pools. Keywords are ordinary words that fit almost any topic; forbidden words are
# filler words a model tends to use; the two pools are disjoint so a row never asks for and
# forbids the same word.
_KEYWORDS = ["light", "story", "future", "simple", "journey", "balance", "reason", "friend", "morning", "change",
             "color", "history", "energy", "garden", "detail", "water", "music", "moment", "plan", "idea",
             "world", "people", "small", "bright", "quiet", "home", "patience", "surprise", "careful", "warm"]
_FORBIDDEN = ["very", "really", "thing", "things", "basically", "actually", "stuff", "nice", "great", "awesome",
              "literally", "totally", "amazing", "perhaps", "however"]
_END_PHRASES = ["Is there anything else I can help with?", "Let me know if you have additional questions.",
                "That is all for today.", "Thank you for reading.", "Hope this helps!", "Any other questions?"]
_FIRST_WORDS = ["today", "first", "then", "finally", "imagine", "sometimes", "next", "overall"]
_LETTERS = list("aeiorstlnm")
_LANGUAGES = ["de", "fr", "es", "it", "pt", "nl"]
_LANGUAGE_NAMES = {"de": "German", "fr": "French", "es": "Spanish", "it": "Italian", "pt": "Portuguese",
                   "nl": "Dutch"}
_SECTION_WORDS = ["Section", "SECTION", "Part", "PART"]
_RELATIONS = ["less than", "at least"]


@dataclass(frozen=True)
class HardSpec:
    """Sampling and phrasing of one verifier id."""

    id: str
    #: (rng, task, response_words) -> kwargs dict with the verifier's argument names.
    sample: Callable[[random.Random, str, int], dict]
    #: kwargs -> list of phrasings (one is picked at random).
    phrase: Callable[[dict], list[str]]
    #: ids that must not appear in the same row.
    conflicts: frozenset = field(default_factory=frozenset)


def _scaled(rng: random.Random, lo: float, hi: float, response_words: int, floor: int = 1) -> int:
    return max(floor, int(round(rng.uniform(lo, hi) * response_words)))


def _words(kw):
    n, rel = kw["num_words"], kw["relation"]
    if rel == "at least":
        return [f"Answer with at least {n} words.", f"Your response should contain at least {n} words.",
                f"Write no fewer than {n} words."]
    return [f"Answer with less than {n} words.", f"Keep your response under {n} words.",
            f"Use fewer than {n} words in total."]


def _sentences(kw):
    n, rel = kw["num_sentences"], kw["relation"]
    if rel == "at least":
        return [f"Your answer must contain at least {n} sentences.", f"Write at least {n} sentences."]
    return [f"Your answer must contain less than {n} sentences.", f"Use fewer than {n} sentences."]


def _freq(kw):
    n, rel, w = kw["frequency"], kw["relation"], kw["keyword"]
    times = "once" if n == 1 else f"{n} times"
    if rel == "at least":
        return [f"Use the word \"{w}\" at least {times}.", f"The word \"{w}\" should appear at least {times}."]
    return [f"Use the word \"{w}\" less than {times}.", f"The word \"{w}\" should appear fewer than {times}."]


def _letters(kw):
    n, rel, c = kw["let_frequency"], kw["let_relation"], kw["letter"]
    if rel == "at least":
        return [f"The letter \"{c}\" should appear at least {n} times in your response.",
                f"Make sure the letter {c} occurs at least {n} times."]
    return [f"The letter \"{c}\" should appear less than {n} times in your response.",
            f"Use the letter {c} fewer than {n} times."]


def _capfreq(kw):
    n, rel = kw["capital_frequency"], kw["capital_relation"]
    if rel == "at least":
        return [f"Write at least {n} words in ALL CAPITAL LETTERS.", f"Include at least {n} fully capitalized words."]
    return [f"Use fewer than {n} words written in all capital letters.",
            f"Write less than {n} words entirely in capitals."]


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _quote_list(ws):
    return ", ".join(f"\"{w}\"" for w in ws)


_SPEC_LIST = [
    HardSpec(
        "keywords:existence",
        lambda r, t, n: {"keywords": r.sample(_KEYWORDS, r.choice([1, 1, 2, 2, 3]))},
        lambda kw: [f"Include the keywords {_quote_list(kw['keywords'])} in your response.",
                    f"Make sure to mention the words {_quote_list(kw['keywords'])}."]
        if len(kw["keywords"]) > 1 else
        [f"Include the keyword \"{kw['keywords'][0]}\" in your response.",
         f"Make sure the word \"{kw['keywords'][0]}\" appears in your answer."],
        frozenset({"language:response_language"}),
    ),
    HardSpec(
        "keywords:frequency",
        lambda r, t, n: {"keyword": r.choice(_KEYWORDS), "frequency": r.choice([1, 2, 2, 3, 3, 4]),
                         "relation": r.choice(_RELATIONS)},
        _freq,
        frozenset({"language:response_language"}),
    ),
    HardSpec(
        "keywords:forbidden_words",
        lambda r, t, n: {"forbidden_words": [w for w in r.sample(_FORBIDDEN, r.choice([1, 2, 3]))
                                             if w not in t.lower().split()] or ["basically"]},
        lambda kw: [f"Do not use the words {_quote_list(kw['forbidden_words'])}.",
                    f"Avoid the words {_quote_list(kw['forbidden_words'])} in your response."]
        if len(kw["forbidden_words"]) > 1 else
        [f"Do not use the word \"{kw['forbidden_words'][0]}\".",
         f"Never use the word \"{kw['forbidden_words'][0]}\" in your response."],
        frozenset({"language:response_language", "combination:repeat_prompt"}),
    ),
    HardSpec(
        "keywords:letter_frequency",
        lambda r, t, n: (lambda rel: {"letter": r.choice(_LETTERS), "let_relation": rel,
                                      # a common letter occurs ~0.3-0.6 times per word
                                      "let_frequency": _scaled(r, 0.05, 0.3, n, floor=2) if rel == "at least"
                                      else _scaled(r, 0.8, 1.5, n, floor=10)})(r.choice(_RELATIONS)),
        _letters,
        frozenset({"combination:repeat_prompt"}),
    ),
    HardSpec(
        "language:response_language",
        lambda r, t, n: {"language": r.choice(_LANGUAGES)},
        lambda kw: [f"Your entire response must be in {_LANGUAGE_NAMES[kw['language']]}, no other language.",
                    f"Respond only in {_LANGUAGE_NAMES[kw['language']]}."],
        frozenset({"change_case:english_lowercase", "change_case:english_capital",
                   "change_case:capital_word_frequency", "startend:end_checker", "startend:quotation",
                   "keywords:existence", "keywords:frequency", "keywords:forbidden_words",
                   "length_constraints:nth_paragraph_first_word", "detectable_content:postscript",
                   "detectable_format:multiple_sections", "combination:repeat_prompt", "combination:two_responses"}),
    ),
    HardSpec(
        "length_constraints:number_sentences",
        lambda r, t, n: {"relation": r.choice(_RELATIONS), "num_sentences": _scaled(r, 0.03, 0.08, n, floor=2)},
        _sentences,
        frozenset({"length_constraints:number_words", "combination:repeat_prompt", "detectable_format:json_format"}),
    ),
    HardSpec(
        "length_constraints:number_paragraphs",
        lambda r, t, n: {"num_paragraphs": r.choice([2, 2, 3, 3, 4]) if n >= 60 else 2},
        lambda kw: [f"Write exactly {kw['num_paragraphs']} paragraphs, separated by the markdown divider ***.",
                    f"Your response must have {kw['num_paragraphs']} paragraphs. Separate paragraphs with ***."],
        frozenset({"length_constraints:nth_paragraph_first_word", "combination:two_responses",
                   "detectable_format:json_format", "detectable_format:multiple_sections"}),
    ),
    HardSpec(
        "length_constraints:number_words",
        lambda r, t, n: (lambda rel: {"relation": rel,
                                      "num_words": _scaled(r, 0.2, 0.6, n, floor=5) if rel == "at least"
                                      else _scaled(r, 0.8, 1.5, n, floor=10)})(r.choice(_RELATIONS)),
        _words,
        frozenset({"length_constraints:number_sentences", "combination:repeat_prompt"}),
    ),
    HardSpec(
        "length_constraints:nth_paragraph_first_word",
        lambda r, t, n: (lambda p: {"num_paragraphs": p, "nth_paragraph": r.randint(1, p),
                                    "first_word": r.choice(_FIRST_WORDS)})(r.choice([2, 3]) if n >= 60 else 2),
        lambda kw: [f"Write exactly {kw['num_paragraphs']} paragraphs separated by two new lines. Paragraph "
                    f"{kw['nth_paragraph']} must start with the word \"{kw['first_word']}\"."],
        frozenset({"length_constraints:number_paragraphs", "combination:two_responses", "combination:repeat_prompt",
                   "detectable_format:json_format", "detectable_format:multiple_sections", "startend:quotation",
                   "detectable_format:title", "language:response_language"}),
    ),
    HardSpec(
        "detectable_content:number_placeholders",
        lambda r, t, n: {"num_placeholders": r.choice([1, 2, 2, 3, 4])},
        lambda kw: [f"Include at least {_n(kw['num_placeholders'], 'placeholder')} in square brackets, such as [name].",
                    f"Your answer must contain at least {_n(kw['num_placeholders'], 'placeholder')} like [address]."],
        frozenset({"detectable_format:json_format"}),
    ),
    HardSpec(
        "detectable_content:postscript",
        lambda r, t, n: {"postscript_marker": r.choice(["P.S.", "P.S.", "P.P.S"])},
        lambda kw: [f"At the end of your response, add a postscript starting with {kw['postscript_marker']}",
                    f"End with a postscript that begins with {kw['postscript_marker']}"],
        frozenset({"startend:end_checker", "startend:quotation", "change_case:english_lowercase",
                   "detectable_format:json_format", "combination:two_responses", "language:response_language"}),
    ),
    HardSpec(
        "detectable_format:number_bullet_lists",
        lambda r, t, n: {"num_bullets": r.choice([2, 3, 3, 4, 5]) if n >= 60 else r.choice([2, 3])},
        lambda kw: [f"Your answer must contain exactly {kw['num_bullets']} bullet points in markdown, like:\n"
                    "* This is a point.",
                    f"Use exactly {kw['num_bullets']} markdown bullet points (lines starting with \"* \")."],
        frozenset({"detectable_format:json_format", "combination:two_responses", "combination:repeat_prompt"}),
    ),
    HardSpec(
        "detectable_format:constrained_response",
        lambda r, t, n: {},
        lambda kw: ["Answer with one of the following options: (\"My answer is yes.\", \"My answer is no.\", "
                    "\"My answer is maybe.\")"],
        frozenset({"detectable_format:json_format", "combination:two_responses", "combination:repeat_prompt",
                   "startend:end_checker", "startend:quotation", "detectable_format:title",
                   "detectable_format:number_bullet_lists", "detectable_format:number_highlighted_sections",
                   "detectable_format:multiple_sections", "length_constraints:number_words",
                   "length_constraints:number_sentences", "length_constraints:number_paragraphs",
                   "length_constraints:nth_paragraph_first_word", "detectable_content:postscript",
                   "detectable_content:number_placeholders", "keywords:existence", "keywords:frequency",
                   "keywords:letter_frequency", "change_case:english_lowercase", "change_case:english_capital",
                   "change_case:capital_word_frequency", "language:response_language"}),
    ),
    HardSpec(
        "detectable_format:number_highlighted_sections",
        lambda r, t, n: {"num_highlights": r.choice([1, 2, 2, 3])},
        lambda kw: [f"Highlight at least {_n(kw['num_highlights'], 'section')} of your answer with markdown, "
                    "i.e. *highlighted section*.",
                    f"Mark at least {_n(kw['num_highlights'], 'part')} of your response in markdown italics, "
                    "like *this part*."],
        frozenset({"detectable_format:json_format"}),
    ),
    HardSpec(
        "detectable_format:multiple_sections",
        lambda r, t, n: {"section_spliter": r.choice(_SECTION_WORDS), "num_sections": r.choice([2, 2, 3])},
        lambda kw: [f"Your response must have {kw['num_sections']} sections. Mark the beginning of each section "
                    f"with {kw['section_spliter']} X, such as: {kw['section_spliter']} 1"],
        frozenset({"detectable_format:json_format", "length_constraints:number_paragraphs",
                   "length_constraints:nth_paragraph_first_word", "combination:two_responses",
                   "change_case:english_lowercase", "language:response_language"}),
    ),
    HardSpec(
        "detectable_format:json_format",
        lambda r, t, n: {},
        lambda kw: ["Wrap your entire output in JSON format. You can use markdown ticks such as ```.",
                    "Your entire response must be valid JSON."],
        frozenset({"detectable_format:number_bullet_lists", "detectable_format:number_highlighted_sections",
                   "detectable_format:multiple_sections", "detectable_format:title",
                   "detectable_format:constrained_response", "length_constraints:number_paragraphs",
                   "length_constraints:nth_paragraph_first_word", "length_constraints:number_sentences",
                   "startend:end_checker", "startend:quotation", "detectable_content:postscript",
                   "detectable_content:number_placeholders", "combination:two_responses",
                   "combination:repeat_prompt", "change_case:english_capital", "change_case:english_lowercase",
                   "punctuation:no_comma"}),
    ),
    HardSpec(
        "detectable_format:title",
        lambda r, t, n: {},
        lambda kw: ["Your answer must contain a title, wrapped in double angular brackets, such as <<my title>>.",
                    "Give your answer a title in double angular brackets, like <<title>>."],
        frozenset({"detectable_format:json_format", "length_constraints:nth_paragraph_first_word"}),
    ),
    HardSpec(
        "combination:two_responses",
        lambda r, t, n: {},
        lambda kw: ["Give two different responses. Separate them with 6 asterisk symbols: ******.",
                    "Write two different answers, separated by ******."],
        frozenset({"detectable_format:json_format", "detectable_format:number_bullet_lists",
                   "detectable_format:multiple_sections", "detectable_format:constrained_response",
                   "length_constraints:number_paragraphs", "length_constraints:nth_paragraph_first_word",
                   "startend:end_checker", "startend:quotation", "detectable_content:postscript",
                   "combination:repeat_prompt", "language:response_language"}),
    ),
    HardSpec(
        "combination:repeat_prompt",
        lambda r, t, n: {"prompt_to_repeat": t},
        lambda kw: ["First repeat the request word for word without change, then give your answer (do not say "
                    "anything before repeating the request; the request you need to repeat does not include "
                    "this sentence)."],
        frozenset({"detectable_format:json_format", "combination:two_responses", "startend:quotation",
                   "punctuation:no_comma", "keywords:forbidden_words", "keywords:letter_frequency",
                   "length_constraints:number_words", "length_constraints:number_sentences",
                   "length_constraints:nth_paragraph_first_word", "detectable_format:constrained_response",
                   "detectable_format:number_bullet_lists", "language:response_language"}),
    ),
    HardSpec(
        "startend:end_checker",
        lambda r, t, n: {"end_phrase": r.choice(_END_PHRASES)},
        lambda kw: [f"Finish your response with this exact phrase: {kw['end_phrase']} No other words should "
                    "follow it.", f"End your answer with the exact phrase \"{kw['end_phrase']}\"."],
        frozenset({"startend:quotation", "detectable_format:json_format", "combination:two_responses",
                   "detectable_content:postscript", "change_case:english_lowercase", "change_case:english_capital",
                   "language:response_language", "detectable_format:constrained_response"}),
    ),
    HardSpec(
        "startend:quotation",
        lambda r, t, n: {},
        lambda kw: ["Wrap your entire response with double quotation marks.",
                    "Put your whole answer inside double quotes."],
        frozenset({"startend:end_checker", "detectable_format:json_format", "combination:two_responses",
                   "combination:repeat_prompt", "detectable_content:postscript",
                   "length_constraints:nth_paragraph_first_word", "language:response_language",
                   "detectable_format:constrained_response"}),
    ),
    HardSpec(
        "change_case:capital_word_frequency",
        lambda r, t, n: {"capital_relation": r.choice(_RELATIONS), "capital_frequency": r.choice([2, 3, 4, 5])},
        _capfreq,
        frozenset({"change_case:english_lowercase", "change_case:english_capital", "language:response_language"}),
    ),
    HardSpec(
        "change_case:english_capital",
        lambda r, t, n: {},
        lambda kw: ["Your entire response should be in English and in all capital letters.",
                    "Write your whole answer in English, using only CAPITAL LETTERS."],
        frozenset({"change_case:english_lowercase", "change_case:capital_word_frequency",
                   "startend:end_checker", "detectable_format:json_format", "language:response_language"}),
    ),
    HardSpec(
        "change_case:english_lowercase",
        lambda r, t, n: {},
        lambda kw: ["Your entire response should be in English, and in all lowercase letters. No capital letters "
                    "are allowed.", "Write your whole answer in lowercase letters only, with no capitals."],
        frozenset({"change_case:english_capital", "change_case:capital_word_frequency", "startend:end_checker",
                   "detectable_content:postscript", "detectable_format:multiple_sections",
                   "detectable_format:json_format", "language:response_language"}),
    ),
    HardSpec(
        "punctuation:no_comma",
        lambda r, t, n: {},
        lambda kw: ["Do not use any commas in your response.", "Your answer must not contain a single comma."],
        frozenset({"combination:repeat_prompt", "detectable_format:json_format"}),
    ),
    HardSpec(
        "quality:no_repetition",
        lambda r, t, n: {},
        lambda kw: ["Do not repeat any sentence or line.", "Never say the same sentence twice."],
        frozenset({"combination:repeat_prompt", "combination:two_responses"}),
    ),
]

SPECS: dict[str, HardSpec] = {s.id: s for s in _SPEC_LIST}

#: Ids the builder draws from unless told otherwise: IFEval's. ``constrained_response`` only
#: makes sense for yes/no questions and ``quality:no_repetition`` is not an IFEval id, so both
#: are opt-in (``--ids`` / ``--require-ids``).
DEFAULT_IDS: tuple[str, ...] = tuple(i for i in SPECS if i not in ("detectable_format:constrained_response",
                                                                    "quality:no_repetition"))


_REGISTRY_CONFLICTS: dict[str, set[str]] = {}


def _registry_conflicts(instruction_id: str) -> set[str]:
    """The verifier's own conflict table (IFEval's), cached; empty for ids it does not know."""
    if instruction_id not in _REGISTRY_CONFLICTS:
        try:
            from ifrl.constraints import conflicts as registry_conflicts

            _REGISTRY_CONFLICTS[instruction_id] = set(registry_conflicts(instruction_id))
        except (ImportError, ValueError):
            _REGISTRY_CONFLICTS[instruction_id] = set()
    return _REGISTRY_CONFLICTS[instruction_id]


def conflicts(a: str, b: str) -> bool:
    """True when ids ``a`` and ``b`` must not share a row: the verifier registry's (IFEval's)
    conflict table, plus the pairs this module declares (either side may declare them)."""
    if a == b:
        return True
    sa, sb = SPECS.get(a), SPECS.get(b)
    if (sa and b in sa.conflicts) or (sb and a in sb.conflicts):
        return True
    return b in _registry_conflicts(a) or a in _registry_conflicts(b)


def sample_kwargs(instruction_id: str, rng: random.Random, task: str, response_words: int) -> dict:
    return SPECS[instruction_id].sample(rng, task, response_words)


def describe(instruction_id: str, kwargs: dict, rng: random.Random | None = None) -> str:
    """One English sentence asking for the constraint (the first phrasing unless ``rng`` picks)."""
    options = SPECS[instruction_id].phrase(kwargs)
    return rng.choice(options) if rng is not None else options[0]
