"""Training conversations: JSONL in OpenAI `messages` or ShareGPT form, or a `datasets` dataset.

Each conversation becomes a list of `Message`s, its persona (character card text) as the system message.
Accepted records (one JSON object per line):
- OpenAI: `{"messages": [{"role": "system"|"user"|"assistant", "content": ...}, ...]}`
- ShareGPT: `{"conversations": [{"from": "system"|"human"|"gpt", "value": ...}, ...]}`
- either may carry the persona as a top-level `"system"` (or `"persona"`) string instead of a system turn.
Local JSONL is read line by line here (not through `datasets`) so an error can name the line; a folder written
by `datasets.save_to_disk` or a hub dataset id goes through `datasets`.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from rp_eval.chat.formats import Message
from rp_eval.errors import RpEvalError, Said

SHIPPED = Path(__file__).resolve().parents[2] / "prompts" / "finetune" / "roleplay_ja.jsonl"

_SHAREGPT_ROLES = {"system": "system", "human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant"}


class DataError(RpEvalError):
    """Training data that can not be used, with a message naming the file, line and problem."""


def to_messages(record: dict, where: str) -> list[Message]:
    """One record (OpenAI or ShareGPT form) as a checked list of messages."""
    if not isinstance(record, dict):
        raise DataError(key="err_data_not_object", where=where, kind=type(record).__name__)
    if "messages" in record:
        turns = [(t.get("role"), t.get("content")) for t in _turn_list(record["messages"], where)]
    elif "conversations" in record:
        turns = []
        for t in _turn_list(record["conversations"], where):
            role = _SHAREGPT_ROLES.get(str(t.get("from", "")).lower())
            if role is None:
                raise DataError(key="err_data_speaker", where=where, speaker=repr(t.get("from")))
            turns.append((role, t.get("value")))
    else:
        raise DataError(key="err_data_no_turns", where=where)
    persona = record.get("system") or record.get("persona") or ""
    messages: list[Message] = [{"role": "system", "content": persona}] if persona else []
    for role, content in turns:
        if role not in ("system", "user", "assistant"):
            raise DataError(key="err_data_role", where=where, role=repr(role))
        if not isinstance(content, str) or not content.strip():
            raise DataError(key="err_data_empty_turn", where=where, role=role)
        if role == "system" and messages:
            raise DataError(key="err_data_system_place", where=where)
        messages.append({"role": role, "content": content.strip()})
    if not any(m["role"] == "assistant" for m in messages):
        raise DataError(key="err_data_no_assistant", where=where)
    if not any(m["role"] == "user" for m in messages):
        raise DataError(key="err_data_no_user", where=where)
    return messages


def _turn_list(value, where: str) -> list[dict]:
    if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
        raise DataError(key="err_data_turns_list", where=where)
    return value


def read_jsonl(path: Path) -> list[list[Message]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as err:
        raise DataError(key="err_ft_not_utf8", path=path) from err
    conversations = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(key="err_ft_not_json", name=path.name, line=number, detail=err.msg) from err
        conversations.append(to_messages(record, Said("data_where_line", name=path.name, line=number)))
    if not conversations:
        raise DataError(key="err_ft_no_conversations", path=path)
    return conversations


def read_dataset(source: str, split: str = "train") -> list[list[Message]]:
    """A `datasets` dataset: a folder from `save_to_disk`, or a hub id (needs the network)."""
    import datasets

    try:
        if Path(source).is_dir():
            data = datasets.load_from_disk(source)
            if isinstance(data, datasets.DatasetDict):
                data = data[split]
        else:
            data = datasets.load_dataset(source, split=split)
    except (OSError, ValueError, KeyError, FileNotFoundError) as err:
        raise DataError(key="err_ft_dataset", source=source, detail=str(err).splitlines()[0]) from err
    return [to_messages(dict(r), Said("data_where_row", source=source, row=i)) for i, r in enumerate(data)]


def load_conversations(source: str = "", split: str = "train") -> list[list[Message]]:
    """Conversations from a JSONL file, a saved `datasets` folder or a hub dataset id; "" is the shipped set."""
    source = (source or str(SHIPPED)).strip()
    path = Path(source).expanduser()
    if path.is_file():
        return read_jsonl(path)
    if path.is_dir() or "/" in source and not source.startswith((".", "/", "~")):
        return read_dataset(str(path) if path.is_dir() else source, split)
    raise DataError(key="err_ft_data_missing", source=source)


def split_eval(
    conversations: list[list[Message]], fraction: float, seed: int
) -> tuple[list[list[Message]], list[list[Message]]]:
    """(train, eval) with `fraction` of the conversations held out (at least one when fraction > 0)."""
    if fraction <= 0 or len(conversations) < 2:
        return conversations, []
    order = list(range(len(conversations)))
    random.Random(seed).shuffle(order)
    n = max(1, round(len(conversations) * fraction))
    held = set(order[:n])
    return [c for i, c in enumerate(conversations) if i not in held], [conversations[i] for i in sorted(held)]
