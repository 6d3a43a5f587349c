"""Automatic metrics of one reply, and their registry (`METRICS`, readable in one screen at the end).

Every metric is a pure function of a `Reply` (the generated text, why it ended, the prompt and the persona's
style markers) returning a float. Metrics with a direction (`good="high"` or `"low"`) take values in [0, 1]
and feed the combined score; descriptive ones (`good=None`, e.g. character counts) only go in the table.
They are heuristics, cheap and deterministic; the calibration (`calibrate.py`) checks them against people.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, Field

from rp_eval.chat.personas import StyleMarkers


class LengthTarget(BaseModel, frozen=True):
    """The reply length aimed at: a short conversational turn (the seed's target is one or two sentences)."""

    min_chars: int = Field(5, ge=0)
    max_chars: int = Field(80, ge=1)
    min_sentences: int = Field(1, ge=0)
    max_sentences: int = Field(2, ge=1)


@dataclass(frozen=True)
class Reply:
    text: str  # what a reader sees (cut and trimmed by generate)
    finish_reason: str = "eos"  # eos | stop_string | length_trimmed | length
    cut_mid_sentence: bool = False
    last_user: str = ""
    system: str = ""
    character: str = ""  # the persona's name
    style: StyleMarkers = field(default_factory=StyleMarkers)
    others: tuple[StyleMarkers, ...] = ()  # the other personas' markers
    target: LengthTarget = field(default_factory=LengthTarget)
    user: str = "あなた"
    history: tuple[str, ...] = ()  # the character's earlier turns in this conversation (oldest first)


# -- how it ended ------------------------------------------------------------------------------------


def natural_stop(r: Reply) -> float:
    """1 if the model ended the turn itself (end token or end string), 0 if the token cap ended it."""
    return float(r.finish_reason in ("eos", "stop_string"))


def length_capped(r: Reply) -> float:
    """1 if the token cap ended the reply (trimmed or not)."""
    return float(r.finish_reason in ("length", "length_trimmed"))


def cut_mid_sentence(r: Reply) -> float:
    """1 if the cap hit inside a sentence, before any trimming (the seed's Mistral failure)."""
    return float(r.cut_mid_sentence)


def empty_reply(r: Reply) -> float:
    """1 if nothing is left to show."""
    return float(not r.text.strip())


_FINAL = set("。！？!?…．.」』）)】〉》～〜ー♪☆★♡♥｡w笑")


def unfinished_ending(r: Reply) -> float:
    """1 if the shown text stops where no sentence ends (its last character is not 。！？…, a closing bracket,
    ～ or the like): a cut the trimming did not catch, or a reply that trails off ("……その時、"). Read from the
    text alone, so it also works on replies that came from elsewhere (rated or meta-evaluation pairs)."""
    text = r.text.rstrip()
    return float(bool(text) and text[-1] not in _FINAL)


# -- length ------------------------------------------------------------------------------------------

_SENTENCE = re.compile(r"[^。！？!?…．]+(?:[。！？!?…．]+[」』）)]*|$)")


def chars(r: Reply) -> float:
    """Characters shown, whitespace not counted."""
    return float(sum(not c.isspace() for c in r.text))


def sentences(r: Reply) -> float:
    """Sentences: runs of text ended by 。！？!?… (and closing brackets), or by the end of the reply."""
    return float(sum(1 for s in _SENTENCE.findall(r.text) if s.strip(" 　\n」』）)")))


def length_in_range(r: Reply) -> float:
    """1 if both the characters and the sentences fall in the target range (`LengthTarget`)."""
    t = r.target
    return float(t.min_chars <= chars(r) <= t.max_chars and t.min_sentences <= sentences(r) <= t.max_sentences)


def length_fit(r: Reply) -> float:
    """1 inside the target range, falling off linearly outside it: to 0 at three times the character limit or
    four times the sentence limit, and towards 0 characters below the minimum (a graded `length_in_range`: a
    reply a sentence over the target is not as bad as one that runs on)."""
    t, n, k = r.target, chars(r), sentences(r)
    over_chars = max(0.0, (n - t.max_chars) / (2 * t.max_chars))
    over_sentences = max(0.0, (k - t.max_sentences) / (3 * t.max_sentences))
    under = max(0.0, (t.min_chars - n) / t.min_chars) if t.min_chars else 0.0
    return max(0.0, 1.0 - max(over_chars, over_sentences, under))


def overlong(r: Reply) -> float:
    """How far past twice the target's character limit the reply runs: 0 up to 2 × max_chars, rising to 1 at
    4 × max_chars (a rambling turn; a little over the target is `length_in_range`'s business)."""
    limit = r.target.max_chars
    return min(1.0, max(0.0, (chars(r) - 2 * limit) / (2 * limit)))


# -- leakage -----------------------------------------------------------------------------------------

_SPECIAL = re.compile(
    r"</?s>|<unk>|<pad>|<\|[A-Za-z_]+\|>|\[/?INST\]|<</?SYS>>|<end_of_turn>|<start_of_turn>"
    r"|(?:^|\n)\s*###\s*\S{1,20}?\s*[:：]?\s*(?:\n|$)|###\s*(?:指示|応答|入力|Instruction|Response|Input)"
)
_ROLE_WORDS = ("アシスタント", "Assistant", "assistant", "システム", "System", "system", "AI", "Bot", "bot")


def special_token_leak(r: Reply) -> float:
    """1 if the shown text holds a special token or a prompt-format end string (</s>, [INST], ### 指示 ...)."""
    return float(bool(_SPECIAL.search(r.text)))


def _tagged(text: str, names: list[str]) -> bool:
    names = [re.escape(n) for n in names if n]
    return bool(names) and bool(re.search(rf"(?:^|\n)\s*(?:{'|'.join(names)})\s*[:：]", text))


def role_tag_leak(r: Reply) -> float:
    """1 if the reply writes a speaker tag for itself ("ひなた:", "アシスタント：") instead of just speaking."""
    return float(_tagged(r.text, [r.character, *_ROLE_WORDS]))


_USER_WORDS = ("ユーザー", "User", "user", "Human", "human", "あなた", "あんた", "お主", "君", "きみ", "お前")
_TAG = re.compile(r"^[ \t　]*([^\s「」『』：:。、！？!?（）()…]{1,12})[ \t　]*([:：]|「)")
_PLAIN_END = re.compile(r"(?:た|ている|ていた|ていく|てくる)[。…]*$")
_POLITE_END = re.compile(r"(?:ました|でした|ます|です|ません)[。…]*$")


def _narrates(line: str, users: str) -> bool:
    """A line that tells what someone does in the third person (narration), with the user as the subject or
    someone's words quoted and reported ("「……」と笑った。"), rather than the character speaking."""
    line = line.strip()
    if not _PLAIN_END.search(line) or _POLITE_END.search(line) or line.endswith(("？", "?")):
        return False
    return bool(re.search(rf"(?:{users})(?:は|が|の|も)", line) or re.search(r"」と[^「」]{0,20}$", line))


def speaks_for_user(r: Reply) -> float:
    """1 if the reply writes the user's part: another speaker's tagged line ("あなた：「……」", "ユーザー:",
    "お客さん「……」"), or narration of what the user does or says ("あなたは……座った。", "（あなたは……）").
    The character's own name as a tag is `role_tag_leak`, not this."""
    users = "|".join(re.escape(n) for n in dict.fromkeys((r.user, *_USER_WORDS)) if n)
    named = [re.escape(n) for n in ("ユーザー", "User", "user", r.user) if n]
    if re.search(rf"(?:{'|'.join(named)})\s*[:：]", r.text):  # the user's tag, even inside a line
        return 1.0
    if re.search(rf"[（(][^）)]*(?:{users})[^）)]*[）)]", r.text):  # a stage direction about the user
        return 1.0
    mine = {r.character, *r.style.first_person, *_ROLE_WORDS}
    lines = [ln for ln in r.text.splitlines() if ln.strip()]
    for k, line in enumerate(lines):
        tag = _TAG.match(line)
        # "名前：" opens another speaker's line anywhere; "名前「" only on a later line ("それは「ふじ」だ" is speech)
        if tag and tag.group(1) not in mine and (tag.group(2) != "「" or k > 0):
            return 1.0
    return float(any(_narrates(ln, users) for ln in lines[1:]))


def _longest_shared(a: str, b: str) -> int:
    if not a or not b:
        return 0
    return SequenceMatcher(None, a, b, autojunk=False).find_longest_match(0, len(a), 0, len(b)).size


@lru_cache(maxsize=1024)
def _grams8(source: str) -> frozenset[str]:
    return frozenset(source[i : i + 8] for i in range(len(source) - 7))


_ASSISTANT = ("お気軽に", "ご質問", "お手伝いでき", "AIとして", "言語モデル", "参考になれば", "一般的に",
              "と言われています", "ことをおすすめ", "心がけ")  # fmt: skip
_TOPIC_SHIFT = ("ところで", "そういえば", "話は変わ", "それはそうと", "さておき", "それより")


def assistant_voice(r: Reply) -> float:
    """1 if the reply falls back into a general-purpose assistant's voice (お気軽に, ご質問, 一般的に,
    と言われています, …): helpful boilerplate instead of the character's own answer."""
    return float(any(p in r.text for p in _ASSISTANT))


def topic_shift(r: Reply) -> float:
    """1 if the reply's first sentence turns to another subject (ところで, そういえば, 話は変わりますが, …) instead
    of answering the user first."""
    first = next(iter(_SENTENCE.findall(r.text)), "")
    return float(any(m in first for m in _TOPIC_SHIFT))


def prompt_echo(r: Reply) -> float:
    """Share of the reply that is one stretch copied from the last user turn or the system text; only stretches
    of 8 or more characters count (short shared words are normal)."""
    text = r.text.strip()
    if not text:
        return 0.0
    longest = 0
    for source in (r.last_user, r.system):
        grams = _grams8(source)  # a shared stretch of 8+ exists only if an 8-gram is shared: most replies stop here
        if any(text[i : i + 8] in grams for i in range(len(text) - 7)):
            longest = max(longest, _longest_shared(text, source))
    return longest / len(text) if longest >= 8 else 0.0


# -- Japanese quality signals ------------------------------------------------------------------------


def _is_japanese(c: str) -> bool:
    o = ord(c)
    return 0x3040 <= o <= 0x30FF or 0x3400 <= o <= 0x4DBF or 0x4E00 <= o <= 0x9FFF or 0xFF66 <= o <= 0xFF9F


def japanese_share(r: Reply) -> float:
    """Share of the letters (kana, kanji, Latin, any script; not punctuation or digits) that are Japanese script."""
    letters = [c for c in r.text if c.isalpha()]
    return sum(_is_japanese(c) for c in letters) / len(letters) if letters else 0.0


def mixed_language(r: Reply) -> float:
    """1 if the reply switches language: a run of 3+ Latin letters, or Hangul / Cyrillic / Thai letters."""
    if re.search(r"[A-Za-zＡ-Ｚａ-ｚ]{3,}", r.text):
        return 1.0
    return float(
        any(c.isalpha() and unicodedata.name(c, "").split()[0] in ("HANGUL", "CYRILLIC", "THAI") for c in r.text)
    )


def _grams(text: str, n: int) -> list[str]:
    text = "".join(c for c in text if not c.isspace())
    return [text[i : i + n] for i in range(len(text) - n + 1)]


def _distinct(text: str, n: int) -> float:
    grams = _grams(text, n)
    if not grams:
        return 1.0 if text.strip() else 0.0
    return len(set(grams)) / len(grams)


def distinct_1(r: Reply) -> float:
    """Distinct characters / characters (1 for a reply with no repeated character)."""
    return _distinct(r.text, 1)


def distinct_2(r: Reply) -> float:
    """Distinct character bigrams / bigrams."""
    return _distinct(r.text, 2)


def repeated_ngrams(r: Reply) -> float:
    """Share of character 4-grams that repeat an earlier one in the same reply."""
    grams = _grams(r.text, 4)
    if not grams:
        return 0.0
    return sum(n - 1 for n in Counter(grams).values()) / len(grams)


def _norm_sentence(s: str) -> str:
    return re.sub(r"[\s　。！？!?…．、,「」『』（）()]+", "", s)


def repeated_sentences(r: Reply) -> float:
    """Share of the sentences that say again, word for word, a sentence said earlier in the reply or in the
    character's earlier turns (punctuation and spaces aside; sentences of 4+ characters)."""
    said = [t for h in r.history for s in _SENTENCE.findall(h) if len(t := _norm_sentence(s)) >= 4]
    seen, repeats, total = set(said), 0, 0
    for s in _SENTENCE.findall(r.text):
        t = _norm_sentence(s)
        if len(t) < 4:
            continue
        total += 1
        repeats += t in seen
        seen.add(t)
    return repeats / total if total else 0.0


def degenerate_repetition(r: Reply) -> float:
    """1 if the reply loops: a stretch of 2-20 characters repeated 3+ times in a row, or over half its 4-grams
    repeated."""
    return float(bool(re.search(r"(.{2,20}?)\1{2,}", r.text, re.S)) or repeated_ngrams(r) > 0.5)


# -- character consistency ---------------------------------------------------------------------------


_OTHERS: dict[tuple, tuple] = {}  # (ids of the style objects, attr, min_len) -> (those objects, words)


def _others(r: Reply, attr: str, min_len: int = 1) -> list[str]:
    # the same for every reply of a persona: computed once (the cached entry holds its objects, so ids stay theirs)
    key = (id(r.style), *map(id, r.others), attr, min_len)
    hit = _OTHERS.get(key)
    if hit is not None and hit[0] is r.style and all(a is b for a, b in zip(hit[1], r.others, strict=True)):
        return hit[2]  # the key holds one id per other persona, so the lengths agree
    own = [*r.style.first_person, *r.style.expected]
    words = {w for o in r.others for w in getattr(o, attr)}
    # a word of another persona that is part of one of this persona's own words is not a sign of the other
    found = sorted(w for w in words if len(w) >= min_len and not any(w in mine for mine in own))
    if len(_OTHERS) > 4096:
        _OTHERS.clear()
    _OTHERS[key] = (r.style, r.others, found)
    return found


def first_person_ok(r: Reply) -> float:
    """0 if the reply says another persona's first-person pronoun (and not its own), else 1. Substring match,
    so "うち" in "そのうち" counts: a known false alarm the calibration absorbs."""
    if any(p in r.text for p in r.style.first_person):
        return 1.0
    return float(not any(p in r.text for p in _others(r, "first_person")))


def expected_markers(r: Reply) -> float:
    """1 if the reply uses at least one of the persona's expected endings or phrases (1 if it lists none)."""
    return float(not r.style.expected or any(m in r.text for m in r.style.expected))


def forbidden_markers(r: Reply) -> float:
    """1 if the reply uses anything the persona lists as breaking the character."""
    return float(any(m in r.text for m in r.style.forbidden if m))


def other_persona_markers(r: Reply) -> float:
    """1 if the reply uses another persona's expected ending or phrase (one that is not also this persona's)."""
    # one-character endings ("べ", "殿") hide inside ordinary words ("食べる"), so only longer ones count
    return float(any(m in r.text for m in _others(r, "expected", min_len=2)))


def marker_rate(r: Reply) -> float:
    """The persona's own marker words (first person and expected endings/phrases) per 100 characters: not a
    score (more is not better) but what a search that games `expected_markers` would push up."""
    n = chars(r)
    words = [w for w in dict.fromkeys((*r.style.first_person, *r.style.expected)) if w]
    return 100 * sum(r.text.count(w) for w in words) / n if n else 0.0


_FACT_WORD = re.compile(r"[一-龥々〆ヶ]+|[ァ-ヺー]{2,}|[0-9０-９A-Za-zＡ-Ｚａ-ｚ][0-9０-９A-Za-zＡ-Ｚａ-ｚ-]*")


def card_grounding(r: Reply) -> float:
    """Share of the reply's fact-bearing words (runs of kanji, katakana or letters and digits, 2+ characters)
    that the persona's card, the user's turn or the character's earlier turns also contain: a reply that swaps
    a fact of the card for another (a name, an age, a place) brings words from nowhere. 0.5 when the reply has
    no such word (nothing to check). A coarse check: a contradiction made of ordinary words passes it."""
    words = [w for w in _FACT_WORD.findall(r.text) if len(w) >= 2]
    if not words:
        return 0.5
    known = "\n".join((r.system, r.last_user, *r.history))
    return sum(w in known for w in words) / len(words)


_POLITE = re.compile(r"(?:です|ます|ございます|でしょう|ください|ません|ましょう|でした|ました)(?=[。！？…!?」』\s]|$)")
POLITE_LABELS = ("polite", "formal", "keigo", "humble", "refined", "teineigo")


def politeness_match(r: Reply) -> float:
    """1 if the reply's register fits the persona's `politeness`: desu/masu sentence endings present for a
    polite persona, absent for any other named level; 1 when the persona names none."""
    level = r.style.politeness.lower().strip()
    if not level or not r.text.strip():
        return 1.0 if not level else 0.0
    polite = bool(_POLITE.search(r.text))
    return float(polite == any(p in level for p in POLITE_LABELS))


# -- the registry ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    name: str
    fn: Callable[[Reply], float]
    group: str
    good: Literal["high", "low"] | None  # None: descriptive, not part of the combined score

    @property
    def doc(self) -> str:
        return " ".join((self.fn.__doc__ or "").split())

    def score(self, value: float) -> float | None:
        """The value on [0, 1] with 1 the good end; None for a descriptive metric."""
        if self.good is None:
            return None
        return value if self.good == "high" else 1.0 - value


METRICS: list[Metric] = [
    Metric("natural_stop", natural_stop, "ending", "high"),
    Metric("length_capped", length_capped, "ending", "low"),
    Metric("cut_mid_sentence", cut_mid_sentence, "ending", "low"),
    Metric("empty_reply", empty_reply, "ending", "low"),
    Metric("unfinished_ending", unfinished_ending, "ending", "low"),
    Metric("chars", chars, "length", None),
    Metric("sentences", sentences, "length", None),
    Metric("length_in_range", length_in_range, "length", "high"),
    Metric("length_fit", length_fit, "length", "high"),
    Metric("overlong", overlong, "length", "low"),
    Metric("special_token_leak", special_token_leak, "leakage", "low"),
    Metric("role_tag_leak", role_tag_leak, "leakage", "low"),
    Metric("speaks_for_user", speaks_for_user, "leakage", "low"),
    Metric("prompt_echo", prompt_echo, "leakage", "low"),
    Metric("assistant_voice", assistant_voice, "character", "low"),
    Metric("topic_shift", topic_shift, "character", "low"),
    Metric("japanese_share", japanese_share, "japanese", "high"),
    Metric("mixed_language", mixed_language, "japanese", "low"),
    Metric("distinct_1", distinct_1, "japanese", "high"),
    Metric("distinct_2", distinct_2, "japanese", "high"),
    Metric("repeated_ngrams", repeated_ngrams, "japanese", "low"),
    Metric("repeated_sentences", repeated_sentences, "japanese", "low"),
    Metric("degenerate_repetition", degenerate_repetition, "japanese", "low"),
    Metric("first_person_ok", first_person_ok, "character", "high"),
    Metric("expected_markers", expected_markers, "character", "high"),
    Metric("forbidden_markers", forbidden_markers, "character", "low"),
    Metric("other_persona_markers", other_persona_markers, "character", "low"),
    Metric("politeness_match", politeness_match, "character", "high"),
    Metric("card_grounding", card_grounding, "character", "high"),
    Metric("marker_rate", marker_rate, "character", None),
]
BY_NAME: dict[str, Metric] = {m.name: m for m in METRICS}


def measure(reply: Reply) -> dict[str, float]:
    """Every registered metric of one reply, by name."""
    return {m.name: round(float(m.fn(reply)), 6) for m in METRICS}
