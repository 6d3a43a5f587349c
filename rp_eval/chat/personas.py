"""Personas (character cards) as data: `prompts/personas/*.yaml`, validated on load.

A persona carries what a role-play prompt needs (SillyTavern Character Card V2 fields) and the style
markers the evaluation can check in a reply (first-person pronouns, expected endings, forbidden words).
`{{char}}` and `{{user}}` are filled when the prompt is built.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rp_eval.chat.formats import Message
from rp_eval.errors import RpEvalError

PERSONAS_DIR = Path(__file__).resolve().parents[2] / "prompts" / "personas"


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

    def fill(self, text: str, user: str = "あなた") -> str:
        """`text` with {{char}} and {{user}} (any case, as SillyTavern accepts) replaced."""
        for key, value in (("char", self.name), ("user", user)):
            for spelled in (key, key.capitalize(), key.upper()):
                text = text.replace("{{" + spelled + "}}", value)
        return text.replace("<BOT>", self.name).replace("<USER>", user)

    def system_text(self, user: str = "あなた") -> str:
        """The system prompt the model sees: the card's own instructions, then who the character is."""
        head = self.system_prompt or (
            "これからロールプレイを行います。あなたは{{char}}になりきり、{{char}}として{{user}}と会話してください。"
            "地の文や説明は書かず、{{char}}の台詞だけを、{{char}}らしい口調で返してください。"
        )
        parts = [
            head,
            f"【{self.name}について】\n{self.description}",
            f"【性格】\n{self.personality}",
            f"【状況】\n{self.scenario}",
        ]
        if self.mes_example.strip():
            parts.append(f"【会話の例】\n{self.mes_example.strip()}")
        if self.post_history_instructions.strip():
            parts.append(self.post_history_instructions.strip())
        return self.fill("\n\n".join(parts), user)

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
