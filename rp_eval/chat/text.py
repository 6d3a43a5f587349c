"""Pure text rules of generation: where a reply stops, what may be shown while streaming, sentence trimming.

Kept free of torch so chat, evaluation and fitness can share them and tests can hit them directly.
"""

from __future__ import annotations

SENTENCE_ENDS = frozenset("。！？!?…．")
CLOSERS = frozenset("」』）)】〉》〕］]”’\"'")
REPLACEMENT = "\ufffd"  # what a decoder prints for half of a multibyte character


def find_stop(text: str, stop_strings: list[str]) -> int | None:
    """Index of the earliest stop string in `text`, or None."""
    hits = [i for s in stop_strings if s and (i := text.find(s)) >= 0]
    return min(hits) if hits else None


def held_back(text: str, stop_strings: list[str]) -> int:
    """How many trailing characters must not be shown yet: a tail that could still grow into a stop string,
    or whitespace that the final text strips (pass text through `showable` first)."""
    hold = 0
    for s in stop_strings:
        for k in range(min(len(s) - 1, len(text)), hold, -1):
            if text.endswith(s[:k]):
                hold = k
                break
    rest = len(text) - hold
    while rest > 0 and text[rest - 1].isspace():
        rest -= 1
    return len(text) - rest


# Closing marks that end a line of their own in Japanese (「はい」 is a whole utterance). The ASCII and curly quotes
# and brackets end one only right after a sentence end ("Yes." or (Yes!)): alone they are apostrophes (don't,
# don’t) or a bracket inside a sentence.
_OWN_END = frozenset("」』）】〉》〕］")


def _is_end(text: str, i: int) -> bool:
    c = text[i]
    if c in SENTENCE_ENDS or c in _OWN_END:
        return True
    if c in CLOSERS:
        j = i - 1
        while j >= 0 and text[j] in CLOSERS and text[j] not in _OWN_END:
            j -= 1
        full_stop = j >= 0 and text[j] == "." and not (j > 0 and text[j - 1].isdigit())
        return j >= 0 and (text[j] in SENTENCE_ENDS or text[j] in _OWN_END or full_stop)
    # ASCII full stop ends a sentence before a space or at the end, but not inside "3.5"
    return c == "." and (i + 1 == len(text) or text[i + 1].isspace()) and not (i > 0 and text[i - 1].isdigit())


def ends_sentence(text: str) -> bool:
    text = text.rstrip()
    return bool(text) and _is_end(text, len(text) - 1)


def trim_to_sentence(text: str) -> str:
    """`text` up to its last whole sentence (with the closing marks that follow it); "" if there is none."""
    for i in range(len(text) - 1, -1, -1):
        if _is_end(text, i):
            return text[: i + 1].rstrip()
    return ""


def drop_broken(text: str) -> str:
    """Decoded text with the bytes that can never form a character dropped, and a trailing half character kept
    (it may still complete). Stops must be searched in this form: a stray byte inside `</s>` decodes as
    `</\ufffds>`, which hides the stop string until the U+FFFD is dropped for display."""
    body = text.rstrip(REPLACEMENT)
    return body.replace(REPLACEMENT, "") + text[len(body) :]


def showable(text: str) -> str:
    """Decoded text as it may be shown while more is coming: a trailing half character is left out (it may
    still complete), bytes that can never form a character are dropped, leading whitespace is dropped."""
    return text.rstrip(REPLACEMENT).replace(REPLACEMENT, "").lstrip()


def clean_reply(text: str) -> str:
    """The final form of a reply: no undecodable bytes, no surrounding whitespace."""
    return text.replace(REPLACEMENT, "").strip()
