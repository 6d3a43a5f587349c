"""The role-play evaluation task: items of persona × situation × user turn(s), as JSONL in `prompts/eval/items/`.

One item per line (schema in `prompts/eval/README.md`); adding an item is adding a line, adding a persona is
adding a YAML file in `prompts/personas/` and a JSONL file here. Items end on a user turn; the model writes the
next reply after the persona's opening (system prompt and greeting), exactly as in the chat.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from rp_eval.chat.formats import Message
from rp_eval.chat.personas import Persona, load_personas
from rp_eval.errors import RpEvalError, Said

TASK_DIR = Path(__file__).resolve().parents[2] / "prompts" / "eval" / "items"
SPLITS = ("dev", "test")
Split = Literal["dev", "test", "all"]


class TaskError(RpEvalError):
    """A task file or item that can not be used, naming the file and line."""


class Turn(BaseModel, frozen=True):
    model_config = ConfigDict(extra="forbid")
    role: Literal["user", "assistant"]
    content: str = Field(min_length=1)


class Item(BaseModel, frozen=True):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    persona: str = Field(min_length=1)
    split: Literal["dev", "test"]
    situation: str = Field(min_length=1)  # what is going on, for the reader of the results (not shown to models)
    turns: list[Turn] = Field(min_length=1)
    tags: list[str] = Field(default_factory=list)

    @field_validator("turns")
    @classmethod
    def _alternate(cls, turns: list[Turn]) -> list[Turn]:
        if turns[0].role != "user" or turns[-1].role != "user":
            raise ValueError("turns must start and end with a user turn")
        if any(a.role == b.role for a, b in zip(turns, turns[1:], strict=False)):
            raise ValueError("turns must alternate user / assistant")
        return turns

    @property
    def multi_turn(self) -> bool:
        return len(self.turns) > 1

    def messages(self, persona: Persona, user: str = "あなた") -> list[Message]:
        """The conversation the model continues: the persona's opening (as in the chat), then the item's turns."""
        return [
            *persona.opening(user),
            *(Message(role=t.role, content=persona.fill(t.content, user)) for t in self.turns),
        ]


@dataclass(frozen=True)
class Task:
    items: list[Item]
    personas: dict[str, Persona]
    version: str  # hash of every item and the personas they use: a cache key for results

    def select(self, split: Split = "dev", limit: int | None = None, seed: int = 0) -> list[Item]:
        """The items of a split; with `limit`, a subset drawn by `seed` (same seed, same subset), in task order."""
        items = [i for i in self.items if split == "all" or i.split == split]
        if limit is not None and 0 < limit < len(items):
            keep = set(random.Random(seed).sample(range(len(items)), limit))
            items = [it for k, it in enumerate(items) if k in keep]
        return items


# pydantic's error types that a hand-written task line runs into, worded by the library's own messages
_PROBLEMS = {
    "missing": "task_problem_missing",
    "extra_forbidden": "task_problem_extra",
    "string_too_short": "task_problem_empty",
    "too_short": "task_problem_empty",
    "literal_error": "task_problem_choice",
    "string_pattern_mismatch": "task_problem_pattern",
    "string_type": "task_problem_type",
    "list_type": "task_problem_type",
    "model_type": "task_problem_type",
    "model_attributes_type": "task_problem_type",
}


def _problems(err: ValidationError) -> list[Said]:
    """Each field problem of a task line as a message (pydantic's own text only for a kind not listed above)."""
    out = []
    for e in err.errors():
        field = ".".join(map(str, e["loc"])) or "item"
        key = _PROBLEMS.get(e["type"])
        if e["type"] == "value_error" and "alternate" in e["msg"]:
            key = "task_problem_alternate"
        elif e["type"] == "value_error" and "start and end" in e["msg"]:
            key = "task_problem_ends"
        expected = Said("task_choices", choices=str((e.get("ctx") or {}).get("expected", "")).split(" or "))
        out.append(Said(key, field=field, expected=expected) if key else Said("task_problem_other", field=field,
                                                                              detail=e["msg"]))  # fmt: skip
    return out


def read_items(folder: Path = TASK_DIR) -> list[Item]:
    """Every item of every `*.jsonl` file in `folder` (or of the one file `folder` names); a bad line raises
    TaskError naming file and line."""
    items: list[Item] = []
    seen: dict[str, Said] = {}
    folder = Path(folder)
    if not folder.exists():
        raise TaskError(key="err_task_not_found", path=str(folder))
    files = [folder] if folder.is_file() else sorted(folder.glob("*.jsonl"))
    if not files:
        raise TaskError(key="err_task_none", folder=str(folder))
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise TaskError(key="err_task_not_utf8", file=path.name) from None
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            where = Said("where_line", file=path.name, line=number)
            try:
                item = Item.model_validate(json.loads(line))
            except json.JSONDecodeError as err:
                raise TaskError(key="err_task_json", where=where, detail=err.msg, column=err.colno) from None
            except ValidationError as err:
                raise TaskError(key="err_task_fields", where=where, problems=_problems(err)) from None
            if item.id in seen:
                raise TaskError(key="err_task_duplicate", where=where, id=item.id, first=seen[item.id])
            seen[item.id] = where
            items.append(item)
    return items


def load_task(folder: Path | str | None = TASK_DIR, personas: dict[str, Persona] | None = None) -> Task:
    """The task with its personas checked: an item naming an unknown persona raises TaskError. `folder`: a folder of
    `*.jsonl` files or one such file (None: the project's own task)."""
    items = read_items(Path(folder) if folder else TASK_DIR)
    personas = load_personas() if personas is None else personas
    for item in items:
        if item.persona not in personas:
            known = ", ".join(personas) or "none"
            raise TaskError(key="err_task_persona", id=item.id, persona=item.persona, known=known)
    used = sorted({i.persona for i in items})
    digest = hashlib.sha256()
    for item in items:
        digest.update(item.model_dump_json().encode())
    for pid in used:
        digest.update(personas[pid].model_dump_json().encode())
    return Task(items, {p: personas[p] for p in used}, digest.hexdigest()[:12])
