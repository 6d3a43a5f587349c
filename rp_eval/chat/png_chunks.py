"""The text of a card PNG, read by walking its chunks: no pixel is decoded, so a small file that claims a huge
picture (a decompression bomb: 169 megapixels in half a megabyte) costs no more than its own bytes.

Pillow reads the text chunks that follow the picture data (where SillyTavern writes `chara`) only when it decodes
the pixels (`Image.load()`), and pypng is not a dependency; the PNG chunk layout (length, type, data, CRC; PNG
spec section 5.3) is simple enough to walk here. Only the picture's size (IHDR) and the card's own text chunks
(`chara`, `ccv3`; tEXt, zTXt or iTXt) are read; their CRCs are checked, a compressed one is inflated only up to
`MAX_TEXT_BYTES`, and a picture over `MAX_PIXELS` is refused, each with a message naming the cap.
"""

from __future__ import annotations

import zlib

from rp_eval.errors import RpEvalError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_PIXELS = 32_000_000  # a portrait is one or two megapixels; 8000 x 4000 is far past any card's
MAX_TEXT_BYTES = 5 * 2**20  # one card text chunk, inflated (the same as the largest card file)
CARD_KEYS = ("chara", "ccv3")
_TEXT_KINDS = (b"tEXt", b"zTXt", b"iTXt")


class PngError(RpEvalError):
    """A card PNG that can not be read, naming what is wrong with it."""


def _not_png(source: str, detail: str) -> PngError:
    return PngError(key="err_card_not_png", source=source, detail=detail)


def _inflate(data: bytes, source: str, key: str) -> bytes:
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, MAX_TEXT_BYTES + 1)
    except zlib.error as e:
        raise _not_png(source, f"the '{key}' chunk does not inflate: {e}") from None
    if len(out) > MAX_TEXT_BYTES:
        raise PngError(key="err_card_text_too_big", source=source, chunk=key, limit=MAX_TEXT_BYTES // 2**20)
    return out


def _text(kind: bytes, body: bytes, source: str) -> tuple[str, str | None]:
    """(keyword, text) of a text chunk; the text only for a card's keys (others are not inflated)."""
    keyword, _, rest = body.partition(b"\0")
    key = keyword.decode("latin-1")
    if key not in CARD_KEYS:
        return key, None
    if kind == b"tEXt":
        raw = rest
    elif kind == b"zTXt":
        raw = _inflate(rest[1:], source, key)
    else:  # iTXt: compression flag, method, language tag \0, translated keyword \0, text (UTF-8)
        flag, rest = rest[:1], rest[2:]
        rest = rest.split(b"\0", 2)[-1] if rest.count(b"\0") >= 2 else b""
        raw = _inflate(rest, source, key) if flag == b"\1" else rest
    if len(raw) > MAX_TEXT_BYTES:
        raise PngError(key="err_card_text_too_big", source=source, chunk=key, limit=MAX_TEXT_BYTES // 2**20)
    return key, raw.decode("latin-1" if kind != b"iTXt" else "utf-8", errors="replace")


def card_texts(blob: bytes, source: str = "card.png") -> dict[str, str]:
    """The card text chunks of a PNG (`chara`, `ccv3`) by keyword; PngError if it is not a PNG whose chunks can
    be walked, or its picture or a card chunk is over the caps."""
    if blob[:8] != PNG_SIGNATURE:
        raise _not_png(source, "the file does not start with the PNG signature")
    found: dict[str, str] = {}
    size = None
    pos = 8
    while pos < len(blob):
        if pos + 12 > len(blob):
            raise _not_png(source, f"the file ends inside a chunk header at byte {pos}")
        length, kind = int.from_bytes(blob[pos : pos + 4], "big"), blob[pos + 4 : pos + 8]
        end = pos + 12 + length
        if end > len(blob):
            raise _not_png(source, f"chunk {kind.decode('latin-1')!r} at byte {pos} runs past the end of the file")
        body = blob[pos + 8 : end - 4]
        checked = kind == b"IHDR" or kind in _TEXT_KINDS
        if checked and zlib.crc32(kind + body) != int.from_bytes(blob[end - 4 : end], "big"):
            raise _not_png(source, f"chunk {kind.decode('latin-1')!r} at byte {pos} is damaged (CRC)")
        if kind == b"IHDR" and len(body) >= 8:
            width, height = int.from_bytes(body[:4], "big"), int.from_bytes(body[4:8], "big")
            size = width * height
            if size > MAX_PIXELS:
                raise PngError(
                    key="err_card_pixels",
                    source=source,
                    width=width,
                    height=height,
                    mp=f"{size / 1e6:.0f}",
                    limit=MAX_PIXELS // 1_000_000,
                )
        elif kind in _TEXT_KINDS:
            key, text = _text(kind, body, source)
            if text is not None:
                found.setdefault(key, text)
        elif kind == b"IEND":
            break
        pos = end
    if size is None:
        raise _not_png(source, "no IHDR chunk (the picture's size)")
    return found
