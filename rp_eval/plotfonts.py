"""The font family of every matplotlib figure the app draws: a font with Japanese glyphs first, so Japanese
labels are not drawn as empty boxes, then matplotlib's own DejaVu Sans (for a machine with no CJK font, and for
glyphs the first font lacks: matplotlib falls back glyph by glyph)."""

from __future__ import annotations

import contextlib
from functools import lru_cache
from pathlib import Path

# Preferred first: Debian's fonts-noto-cjk, then other common Japanese fonts (Linux, macOS, Windows)
CJK = ["Noto Sans CJK JP", "Noto Sans JP", "IPAexGothic", "IPAGothic", "TakaoGothic", "Hiragino Sans", "Yu Gothic",
       "Meiryo", "Noto Serif CJK JP"]  # fmt: skip
FILE_HINTS = ("cjk", "ipa", "takao", "hiragino", "yugoth", "meiryo", "notosansjp")  # their files' names, lower case


@lru_cache(maxsize=1)
def families() -> list[str]:
    """The first installed font of `CJK` (none when there is none), then DejaVu Sans."""
    from matplotlib import font_manager

    installed = {f.name for f in font_manager.fontManager.ttflist}
    if not installed.intersection(CJK):
        # matplotlib lists the system's fonts once and keeps the list in its cache: a Japanese font installed
        # after that (apt-get install fonts-noto-cjk on a machine where matplotlib ran before) is not in it
        for path in font_manager.findSystemFonts():
            if any(hint in Path(path).name.lower() for hint in FILE_HINTS):
                with contextlib.suppress(OSError, RuntimeError, ValueError):  # an unreadable file: not a plot's end
                    font_manager.fontManager.addfont(path)
        installed = {f.name for f in font_manager.fontManager.ttflist}
    return [f for f in CJK if f in installed][:1] + ["DejaVu Sans"]


def rc() -> dict[str, list[str]]:
    """For `plt.rc_context(plotfonts.rc())` around a figure's drawing."""
    return {"font.family": families()}
