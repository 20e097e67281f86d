"""language:* — the language the response is written in."""

from ifrl.constraints.families import change_case  # noqa: F401  (registers the case ids served below)
from ifrl.constraints.registry import KwargSpec, constraint, fast_shared

# ISO 639-1 codes (langdetect's labels) and English names, for phrasing and sampling.
LANGUAGES = {
    "en": "English", "es": "Spanish", "pt": "Portuguese", "ar": "Arabic", "hi": "Hindi", "fr": "French",
    "ru": "Russian", "de": "German", "ja": "Japanese", "it": "Italian", "bn": "Bengali", "uk": "Ukrainian",
    "th": "Thai", "ur": "Urdu", "ta": "Tamil", "te": "Telugu", "bg": "Bulgarian", "ko": "Korean",
    "pl": "Polish", "he": "Hebrew", "fa": "Persian", "vi": "Vietnamese", "ne": "Nepali", "sw": "Swahili",
    "kn": "Kannada", "mr": "Marathi", "gu": "Gujarati", "pa": "Punjabi", "ml": "Malayalam", "fi": "Finnish",
    "nl": "Dutch", "sv": "Swedish", "tr": "Turkish", "el": "Greek", "cs": "Czech", "ro": "Romanian",
    "hu": "Hungarian", "id": "Indonesian", "da": "Danish", "no": "Norwegian",
}


def _describe(kw):
    name = LANGUAGES.get(kw["language"], kw["language"])
    return f"Your ENTIRE response should be in {name} language, no other language is allowed."


@constraint(
    "language:response_language",
    kwargs=(KwargSpec("language", "str", doc="ISO 639-1 code as langdetect reports it, e.g. 'de'"),),
    describe=_describe,
    sample=lambda rng: {"language": rng.choice(sorted(LANGUAGES))},
    conflicts={"language:response_language", "detectable_format:multiple_sections", "keywords:existence",
               "keywords:frequency", "keywords:forbidden_words", "startend:end_checker",
               "change_case:english_capital", "change_case:english_lowercase"},
)
def response_language(text: str, kw: dict) -> bool:
    """langdetect (seed 0) names the language; undetectable text passes, as in IFEval."""
    from ifrl.constraints.text.langdetect import detect_ref

    lang = detect_ref(text)
    return lang is None or lang == kw["language"]


@fast_shared("language:response_language", "change_case:english_capital", "change_case:english_lowercase")
def _language_ids_batch(ids, texts, kws):
    """The three ids langdetect decides, in one detection pass. The case ids ask for English
    and for their case test first (``str.isupper`` / ``str.islower``, done in the kernel);
    undetectable text passes, as in IFEval."""
    from ifrl.constraints.text.langdetect import is_language_batch

    langs, cases = [], []
    for iid, kw in zip(ids, kws):
        if iid == "language:response_language":
            langs.append(kw["language"])
            cases.append(0)
        else:
            langs.append("en")
            cases.append(1 if iid == "change_case:english_capital" else 2)
    return is_language_batch(texts, langs, cases=cases)
