"""Character cards (SillyTavern V2, and V3): JSON and PNG (a `chara` tEXt chunk holding base64 JSON), in and out.

A card is kept as the JSON object it came in (`Card.raw`), so exporting an imported card gives back every
field unchanged, including ones rp_eval does not use (`extensions`, V3's `assets`, ...). V1 cards (the fields at
the top level) are read too and exported as V2. A V3 card (`chara_card_v3`, in a PNG's `ccv3` chunk, which wins
over `chara`) keeps its spec; its PNG gets both chunks, `chara` holding the V2 form older readers expect.
The lorebook (`data.character_book`) goes to the persona and into prompts (`rp_eval.chat.lorebook`).
A PNG is written by adding the card's chunks to the picture's own bytes, so the portrait comes back unchanged.
A persona's style markers travel in `data.extensions.rp_eval`, so persona -> card -> persona keeps them.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

from PIL import Image
from pydantic import ValidationError

from rp_eval.chat import png_chunks
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


SPECS = ("chara_card_v2", "chara_card_v3")
PNG_SIGNATURE = png_chunks.PNG_SIGNATURE


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

    @property
    def spec(self) -> str:
        return self.raw.get("spec", "chara_card_v2")

    def to_json(self) -> str:
        return json.dumps(self.raw, ensure_ascii=False, indent=2)

    def as_v2(self) -> dict:
        """The card in V2 form (what a `chara` chunk holds): a V3 card with its spec turned back to V2."""
        if self.spec == "chara_card_v2":
            return self.raw
        return {**self.raw, "spec": "chara_card_v2", "spec_version": "2.0"}


def _v2(obj: object, source: str) -> dict:
    if not isinstance(obj, dict):
        raise CardError(key="err_card_not_object", source=source, kind=type(obj).__name__)
    if obj.get("spec") in SPECS or isinstance(obj.get("data"), dict):
        data = obj.get("data")
        if not isinstance(data, dict):
            raise CardError(key="err_card_data", source=source)
        card = obj
    else:  # V1: the fields at the top level
        data = {k: obj.get(k, "") for k in V2_FIELDS if k not in ("alternate_greetings", "tags", "extensions")}
        data.update(alternate_greetings=[], tags=[], extensions={}, **{k: v for k, v in obj.items() if k not in data})
        card = {"spec": "chara_card_v2", "spec_version": "2.0", "data": data}
    if not isinstance(data.get("name"), str) or not data["name"].strip():
        raise CardError(key="err_card_no_name", source=source)
    for key in ("alternate_greetings", "tags"):
        if key in data and not isinstance(data[key], list):
            raise CardError(key="err_card_not_list", source=source, field=key)
    book = data.get("character_book")
    if book is not None and not (isinstance(book, dict) and isinstance(book.get("entries", []), list)):
        raise CardError(key="err_card_book", source=source)
    return card


def _parse_json(text: str | bytes, source: str) -> Card:
    try:
        obj = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CardError(key="err_card_not_json", source=source, detail=str(e)) from None
    except RecursionError:
        raise CardError(key="err_card_too_deep", source=source) from None
    except ValueError as e:  # an integer past Python's 4,300-digit limit for reading text
        raise CardError(key="err_card_number", source=source, detail=str(e)[:120]) from None
    return Card(_v2(obj, source))


def read_card_png(blob: bytes, source: str = "card.png") -> Card:
    """The card in a PNG's `ccv3` (V3) or `chara` (V2) text chunk (base64 JSON), read from the chunks alone: no
    pixel is decoded (`rp_eval.chat.png_chunks`: the picture's size and the chunk's size are capped)."""
    try:
        texts = png_chunks.card_texts(blob, source)
    except png_chunks.PngError as e:
        raise CardError(key=e.key, **e.values) from None
    chunk = texts.get("ccv3") or texts.get("chara")
    if not chunk:
        raise CardError(key="err_card_no_chunk", source=source)
    try:
        decoded = base64.b64decode(chunk, validate=False)
    except (binascii.Error, ValueError) as e:
        raise CardError(key="err_card_not_base64", source=source, detail=str(e)) from None
    return _parse_json(decoded, source)


def read_card(blob: bytes, filename: str = "card.json") -> Card:
    """A card from the bytes of an uploaded `.json` or `.png` file."""
    if len(blob) > MAX_CARD_BYTES:
        raise CardError(key="err_card_too_big", source=filename, mb=f"{len(blob) / 2**20:.1f}", limit=_LIMIT_MB)
    if blob[:8] == PNG_SIGNATURE or filename.lower().endswith(".png"):
        return read_card_png(blob, filename)
    return _parse_json(blob, filename)


def read_card_file(path: Path | str) -> Card:
    path = Path(path)
    size = path.stat().st_size
    if size > MAX_CARD_BYTES:
        raise CardError(key="err_card_too_big", source=path.name, mb=f"{size / 2**20:.1f}", limit=_LIMIT_MB)
    return read_card(path.read_bytes(), path.name)


_LIMIT_MB = MAX_CARD_BYTES // 2**20
CARD_CHUNKS = (b"chara", b"ccv3")


def _text_chunk(key: bytes, text: str) -> bytes:
    body = key + b"\0" + text.encode("latin-1")
    return len(body).to_bytes(4, "big") + b"tEXt" + body + zlib.crc32(b"tEXt" + body).to_bytes(4, "big")


def _b64(obj: dict) -> str:
    return base64.b64encode(json.dumps(obj, ensure_ascii=False).encode("utf-8")).decode("ascii")


def card_png(card: Card, image: bytes | None = None) -> bytes:
    """A PNG holding the card: the given picture (or a plain 400x600 one) byte for byte, its old card chunks
    replaced by `chara` (and `ccv3` for a V3 card) just before the end."""
    if not image:
        blank = io.BytesIO()
        Image.new("RGB", (400, 600), (232, 226, 214)).save(blank, format="PNG")
        image = blank.getvalue()
    elif image[:8] != PNG_SIGNATURE:  # a JPEG or WebP portrait: its pixels, as a PNG
        converted = io.BytesIO()
        Image.open(io.BytesIO(image)).save(converted, format="PNG")
        image = converted.getvalue()
    chunks = [_text_chunk(b"chara", _b64(card.as_v2()))]
    if card.spec == "chara_card_v3":
        chunks.append(_text_chunk(b"ccv3", _b64(card.raw)))
    out, pos = [image[:8]], 8
    while pos + 8 <= len(image):
        length, kind = int.from_bytes(image[pos : pos + 4], "big"), image[pos + 4 : pos + 8]
        end = pos + 12 + length
        if kind == b"IEND":
            out.extend(chunks)
            chunks = []
        if not (kind == b"tEXt" and image[pos + 8 : end - 4].split(b"\0", 1)[0] in CARD_CHUNKS):
            out.append(image[pos:end])
        pos = end
    return b"".join(out + chunks)


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
            character_book=d.get("character_book") if isinstance(d.get("character_book"), dict) else None,
        )
    except (ValidationError, TypeError) as e:
        raise CardError(key="err_card_bad", name=str(d.get("name")), detail=str(e)) from None


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
    if persona.character_book is not None:
        data["character_book"] = persona.character_book
    return Card({"spec": "chara_card_v2", "spec_version": "2.0", "data": data})
