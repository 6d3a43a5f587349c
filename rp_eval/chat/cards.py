"""SillyTavern Character Card V2: JSON and PNG (a `chara` tEXt chunk holding base64 JSON), in and out.

A card is kept as the JSON object it came in (`Card.raw`), so exporting an imported card gives back every
field unchanged, including ones rp_eval does not use (`character_book`, `extensions`, ...). V1 cards (the
fields at the top level) are read too and exported as V2. PNG chunks are read and written with Pillow.
A persona's style markers travel in `data.extensions.rp_eval`, so persona -> card -> persona keeps them.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, PngImagePlugin, UnidentifiedImageError
from pydantic import ValidationError

from rp_eval.chat.personas import Persona, StyleMarkers
from rp_eval.errors import RpEvalError

MAX_CARD_BYTES = 5 * 2**20  # uploads larger than this are refused before they are parsed
V2_FIELDS = (
    "name",
    "description",
    "personality",
    "scenario",
    "first_mes",
    "mes_example",
    "creator_notes",
    "system_prompt",
    "post_history_instructions",
    "alternate_greetings",
    "tags",
    "creator",
    "character_version",
    "extensions",
)
_PERSONA_TEXT = ("description", "personality", "scenario", "first_mes", "mes_example", "system_prompt")


class CardError(RpEvalError):
    """A character card that can not be read, naming what is wrong with it."""


@dataclass(frozen=True)
class Card:
    raw: dict  # the whole card as JSON: {"spec": "chara_card_v2", "spec_version": "2.0", "data": {...}}

    @property
    def data(self) -> dict:
        return self.raw["data"]

    @property
    def name(self) -> str:
        return self.data.get("name", "")

    def to_json(self) -> str:
        return json.dumps(self.raw, ensure_ascii=False, indent=2)


def _v2(obj: object, source: str) -> dict:
    if not isinstance(obj, dict):
        raise CardError(f"{source}: a character card is a JSON object, got {type(obj).__name__}")
    if obj.get("spec") == "chara_card_v2" or isinstance(obj.get("data"), dict):
        data = obj.get("data")
        if not isinstance(data, dict):
            raise CardError(f"{source}: field 'data' must be an object")
        card = obj
    else:  # V1: the fields at the top level
        data = {k: obj.get(k, "") for k in V2_FIELDS if k not in ("alternate_greetings", "tags", "extensions")}
        data.update(alternate_greetings=[], tags=[], extensions={}, **{k: v for k, v in obj.items() if k not in data})
        card = {"spec": "chara_card_v2", "spec_version": "2.0", "data": data}
    if not isinstance(data.get("name"), str) or not data["name"].strip():
        raise CardError(f"{source}: field 'data.name' is missing or empty")
    for key in ("alternate_greetings", "tags"):
        if key in data and not isinstance(data[key], list):
            raise CardError(f"{source}: field 'data.{key}' must be a list")
    return card


def _parse_json(text: str | bytes, source: str) -> Card:
    try:
        obj = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CardError(f"{source}: the card is not valid JSON ({e})") from None
    except RecursionError:
        raise CardError(f"{source}: the card's JSON is nested too deeply to be a character card") from None
    return Card(_v2(obj, source))


def read_card_png(blob: bytes, source: str = "card.png") -> Card:
    """The card in a PNG's `chara` text chunk (base64 JSON)."""
    try:
        image = Image.open(io.BytesIO(blob))
        image.load()
    except (UnidentifiedImageError, OSError) as e:
        raise CardError(f"{source}: not a readable PNG image ({e})") from None
    chunk = getattr(image, "text", {}).get("chara") or image.info.get("chara")
    if not chunk:
        raise CardError(f"{source}: the PNG has no 'chara' chunk, so it holds no character card")
    try:
        decoded = base64.b64decode(chunk, validate=False)
    except (binascii.Error, ValueError) as e:
        raise CardError(f"{source}: the 'chara' chunk is not base64 ({e})") from None
    return _parse_json(decoded, source)


def read_card(blob: bytes, filename: str = "card.json") -> Card:
    """A card from the bytes of an uploaded `.json` or `.png` file."""
    if len(blob) > MAX_CARD_BYTES:
        raise CardError(
            f"{filename}: the file is {len(blob) / 2**20:.1f} MB; cards up to {MAX_CARD_BYTES // 2**20} MB are accepted"
        )
    if blob[:8] == b"\x89PNG\r\n\x1a\n" or filename.lower().endswith(".png"):
        return read_card_png(blob, filename)
    return _parse_json(blob, filename)


def read_card_file(path: Path | str) -> Card:
    path = Path(path)
    if path.stat().st_size > MAX_CARD_BYTES:
        raise CardError(f"{path.name}: the file is larger than {MAX_CARD_BYTES // 2**20} MB")
    return read_card(path.read_bytes(), path.name)


def card_png(card: Card, image: bytes | None = None) -> bytes:
    """A PNG holding the card: the given picture (or a plain 400x600 one) with a `chara` chunk."""
    picture = Image.open(io.BytesIO(image)) if image else Image.new("RGB", (400, 600), (232, 226, 214))
    info = PngImagePlugin.PngInfo()
    for key, value in getattr(picture, "text", {}).items():
        if key != "chara":
            info.add_text(key, value)
    info.add_text("chara", base64.b64encode(json.dumps(card.raw, ensure_ascii=False).encode("utf-8")).decode("ascii"))
    out = io.BytesIO()
    picture.save(out, format="PNG", pnginfo=info)
    return out.getvalue()


def _slug(name: str) -> str:
    slug = re.sub(r"[^\w-]+", "-", name.strip(), flags=re.UNICODE).strip("-").lower()
    return slug or "card"


def card_to_persona(card: Card, persona_id: str = "") -> Persona:
    """The persona a card describes (style markers from `extensions.rp_eval.style` when present)."""
    d = card.data
    ours = (d.get("extensions") or {}).get("rp_eval") or {}
    try:
        return Persona(
            id=persona_id or ours.get("id") or _slug(d["name"]),
            name=d["name"],
            description=d.get("description") or "-",
            personality=d.get("personality") or "-",
            scenario=d.get("scenario") or "-",
            first_mes=d.get("first_mes") or "……",
            mes_example=d.get("mes_example") or "",
            system_prompt=d.get("system_prompt") or "",
            post_history_instructions=d.get("post_history_instructions") or "",
            alternate_greetings=[str(g) for g in d.get("alternate_greetings") or []],
            tags=[str(g) for g in d.get("tags") or []],
            creator_notes=d.get("creator_notes") or "",
            style=StyleMarkers.model_validate(ours.get("style") or {}),
        )
    except (ValidationError, TypeError) as e:
        raise CardError(f"card '{d.get('name')}': {e}") from None


def persona_to_card(persona: Persona) -> Card:
    """A V2 card for a persona, with its style markers under `extensions.rp_eval`."""
    data = {k: getattr(persona, k) for k in _PERSONA_TEXT}
    data.update(
        name=persona.name,
        creator_notes=persona.creator_notes,
        post_history_instructions=persona.post_history_instructions,
        alternate_greetings=list(persona.alternate_greetings),
        tags=list(persona.tags),
        creator="rp_eval",
        character_version="",
        extensions={"rp_eval": {"id": persona.id, "style": persona.style.model_dump()}},
    )
    return Card({"spec": "chara_card_v2", "spec_version": "2.0", "data": data})
