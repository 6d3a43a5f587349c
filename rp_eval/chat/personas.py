"""Personas (character cards) as data: `prompts/personas/*.yaml`, validated on load.

A persona carries what a role-play prompt needs (SillyTavern Character Card V2 fields) and the style
markers the evaluation can check in a reply (first-person pronouns, expected endings, forbidden words).
`{{char}}` and `{{user}}` are filled when the prompt is built.

The frame around a card (the opening instruction and the section titles) is Japanese or English: by default
the language the card is written in (`frame="auto"`), or the one picked. Empty sections are left out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rp_eval.chat.formats import Message
from rp_eval.errors import RpEvalError

PERSONAS_DIR = Path(__file__).resolve().parents[2] / "prompts" / "personas"


Frame = Literal["auto", "ja", "en"]
DEFAULT_USER = {"ja": "あなた", "en": "User"}  # {{user}} when no name is given, per frame language
FRAMES = {
    "ja": {
        "head": (
            "これからロールプレイを行います。あなたは{{char}}になりきり、{{char}}として{{user}}と会話してください。"
            "地の文や説明は書かず、{{char}}の台詞だけを、{{char}}らしい口調で返してください。"
        ),
        "about": "【{name}について】",
        "personality": "【性格】",
        "scenario": "【状況】",
        "examples": "【会話の例】",
    },
    "en": {
        "head": (
            "This is a role-play. You are {{char}}: stay in character and talk with {{user}} as {{char}} would. "
            "Write only {{char}}'s lines, in {{char}}'s own voice, without narration or explanations."
        ),
        "about": "[About {name}]",
        "personality": "[Personality]",
        "scenario": "[Scenario]",
        "examples": "[Example dialogue]",
    },
}


def is_japanese(text: str) -> bool:
    """Whether `text` is mostly Japanese: kana or kanji make up a tenth of its letters or more."""
    letters = [c for c in text if c.isalpha()]
    cjk = sum(1 for c in letters if "\u3040" <= c <= "\u30ff" or "\u4e00" <= c <= "\u9fff")
    return bool(letters) and cjk >= 0.1 * len(letters)


class PersonaError(RpEvalError):
    """A persona file that can not be read, naming the file and the field."""


class StyleMarkers(BaseModel, frozen=True):
    model_config = ConfigDict(extra="forbid")

    first_person: list[str] = Field(default_factory=list)  # e.g. ["拙者"]
    expected: list[str] = Field(default_factory=list)  # endings or phrases the character uses, e.g. ["ござる"]
    forbidden: list[str] = Field(default_factory=list)  # what breaks the character, e.g. ["僕", "です。"]
    politeness: str = ""  # e.g. "casual", "polite", "archaic"
    dialect: str = ""  # e.g. "kansai", "" for none


class Persona(BaseModel, frozen=True):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    description: str = Field(min_length=1)
    personality: str = Field(min_length=1)
    scenario: str = Field(min_length=1)
    first_mes: str = Field(min_length=1)
    mes_example: str = ""
    system_prompt: str = ""
    post_history_instructions: str = ""
    alternate_greetings: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    creator_notes: str = ""
    style: StyleMarkers = Field(default_factory=StyleMarkers)
    character_book: dict | None = None  # a card's lorebook, as the card holds it (rp_eval.chat.lorebook reads it)

    def language(self) -> str:
        """ "ja" or "en": the language the card is written in."""
        return "ja" if is_japanese(" ".join([self.description, self.personality, self.first_mes])) else "en"

    def frame_language(self, frame: Frame = "auto") -> str:
        return self.language() if frame == "auto" else frame

    def default_user(self, frame: Frame = "auto") -> str:
        return DEFAULT_USER[self.frame_language(frame)]

    def fill(self, text: str, user: str = "あなた") -> str:
        """`text` with {{char}} and {{user}} (any case, as SillyTavern accepts) replaced."""
        for key, value in (("char", self.name), ("user", user)):
            for spelled in (key, key.capitalize(), key.upper()):
                text = text.replace("{{" + spelled + "}}", value)
        return text.replace("<BOT>", self.name).replace("<USER>", user)

    def system_text(self, user: str = "あなた", frame: Frame = "auto") -> str:
        """The system prompt the model sees: the card's own instructions (or the frame's), then who the character
        is, under titles in the frame's language; sections the card leaves empty (or "-") are left out."""
        words = FRAMES[self.frame_language(frame)]
        parts = [self.system_prompt or words["head"]]
        for title, body in (
            (words["about"].format(name=self.name), self.description),
            (words["personality"], self.personality),
            (words["scenario"], self.scenario),
            (words["examples"], self.mes_example),
        ):
            if body.strip() and body.strip() != "-":
                parts.append(f"{title}\n{body.strip()}")
        if self.post_history_instructions.strip():
            parts.append(self.post_history_instructions.strip())
        return self.fill("\n\n".join(parts), user)

    def example_blocks(self, user: str = "あなた") -> list[str]:
        """The example dialogues as `system_text` writes them (under either frame's title, then without one), so a
        prompt too long for a model can be told where they are and leave them out; [] when the card has none."""
        body = self.mes_example.strip()
        if not body or body == "-":
            return []
        return [self.fill(f"{FRAMES[lang]['examples']}\n{body}", user) for lang in FRAMES] + [self.fill(body, user)]

    def greeting(self, user: str = "あなた", index: int = 0) -> str:
        """The first message (index 0) or one of the alternate greetings (1, 2, ...)."""
        greetings = [self.first_mes, *self.alternate_greetings]
        return self.fill(greetings[index % len(greetings)], user)

    def opening(self, user: str = "あなた") -> list[Message]:
        """The messages that open a chat: the system prompt, then the first message as an assistant turn."""
        return [
            Message(role="system", content=self.system_text(user)),
            Message(role="assistant", content=self.greeting(user)),
        ]


def _field_path(loc: tuple) -> str:
    return ".".join(str(p) for p in loc) or "(top level)"


def load_persona(path: Path | str) -> Persona:
    """One persona from a YAML file; its id is the file stem. Raises PersonaError naming file and field."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise PersonaError(f"persona file {path.name}: can not be read ({e.strerror or e})") from None
    except UnicodeDecodeError:
        raise PersonaError(f"persona file {path.name}: not UTF-8 text (save it as UTF-8)") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise PersonaError(f"persona file {path.name}: bad YAML{where}: {getattr(e, 'problem', e)}") from None
    if not isinstance(data, dict):
        raise PersonaError(f"persona file {path.name}: expected a mapping of fields, got {type(data).__name__}")
    data = {"id": path.stem, **data}
    try:
        return Persona.model_validate(data)
    except ValidationError as e:
        problems = "; ".join(f"field '{_field_path(err['loc'])}': {err['msg']}" for err in e.errors())
        raise PersonaError(f"persona file {path.name}: {problems}") from None


def load_personas(folder: Path = PERSONAS_DIR) -> dict[str, Persona]:
    """Every `*.yaml` persona in `folder`, by id, in file-name order."""
    return {p.stem: load_persona(p) for p in sorted(Path(folder).glob("*.yaml"))}
