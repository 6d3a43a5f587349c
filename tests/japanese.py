"""What counts as English left on the Japanese page: for the browser walk (tests/test_i18n.py) and for the unit
tests that word messages, tables and plots in Japanese without a browser."""

from __future__ import annotations

import re

# What may stay in Latin letters on the Japanese page: names of methods, formats, libraries and settings that are
# written this way in Japanese too. A word of the page is English when it is none of these, no model or persona
# name, no number and no code (identifiers with _ / . or digits, CamelCase, ALL CAPS, text inside code blocks).
# fmt: off
LATIN_TERMS = {
    "lora", "qlora", "top-p", "top-k", "min-p", "top", "min", "alpha", "dtype", "sigma0", "yaml", "json", "jsonl",
    "csv", "html", "png", "cma-es", "cma", "es", "likert", "bradley", "terry", "bradley-terry", "krippendorff",
    "spearman", "kendall", "elo", "gpu", "cpu", "cuda", "mergekit", "hugging", "face", "hub", "id", "mlp", "mb",
    "dev", "test", "sillytavern", "v2", "v3", "ties", "dare", "slerp", "llm", "rp", "eval", "ja", "en", "a", "b",
    "p", "k", "t", "r", "n", "s", "ai", "ok", "demo", "llama", "mistral", "gradio", "enter", "shift", "tokens",
    "normalize", "int8", "mask", "lambda", "filter", "value", "slice", "layer", "range", "other", "gamma", "english",
    "or", "ccv3",
}
# fmt: on


def japanese(text: str) -> bool:
    """Whether `text` has kana, kanji or full-width forms in it."""
    return any("\u3040" <= c <= "\u9fff" or "\uff00" <= c <= "\uffef" for c in str(text))


def english_words(text: str, allowed: set[str] | frozenset[str] = frozenset()) -> list[str]:
    """The English words of `text`: Latin words that are no code (identifiers with _ / . or digits, CamelCase, ALL
    CAPS, Markdown `code`), none of LATIN_TERMS and none of `allowed` (model names, option values the text quotes)."""
    words = re.findall(r"[A-Za-z][A-Za-z0-9_./'-]*", re.sub(r"`[^`]*`", "", str(text)))  # `code` is code
    return [
        w
        for w in words
        if w.strip("'") not in allowed
        and not re.search(r"[\d_./]|[a-z][A-Z]|^[A-Z]{2,}$", w)
        and w.lower().strip("'-") not in LATIN_TERMS
    ]
