"""The certificate's one font, shipped in the package, and the rule for characters it lacks.

ReportLab embeds only TrueType-outline fonts, and a PDF whose text is drawn in a font it does not embed
shows it only where that font happens to be installed (the Adobe CID font ``STSong-Light`` used before)
or draws ■ (Chinese in Helvetica). ``fonts/NotoSansSC-Regular-GB2312.ttf`` is a ``glyf`` subset of Noto
Sans SC (SIL OFL 1.1, ``fonts/OFL.txt``; built by ``scripts/build_cjk_font.py``) covering GB 2312, Latin
and CJK punctuation; it draws every string of the certificate, Latin included, so every font in the PDF
is embedded.

A character outside the font never silently becomes ■: a retirement whose beneficiary, purpose or use
holds one is refused at issuance (:func:`check_printable`) with the characters named, and text that
reached the certificate another way (older rows) prints them as ``[U+XXXX]`` (:func:`printable`).

>>> missing_characters("厦门海沧 Haicang")
[]
>>> missing_characters("朱镕基")
['镕']
>>> printable("朱镕基")
'朱[U+9555]基'
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from core.errors import InvalidInput

FONT_FILE = Path(__file__).resolve().parent / "fonts" / "NotoSansSC-Regular-GB2312.ttf"
FONT_NAME = "NotoSansSC-GB2312"


@lru_cache(maxsize=1)
def certificate_font() -> Any:
    """Return the registered ReportLab ``TTFont`` (registered once per process)."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    font = TTFont(FONT_NAME, str(FONT_FILE))
    pdfmetrics.registerFont(font)
    return font


@lru_cache(maxsize=1)
def _covered() -> frozenset[int]:
    return frozenset(certificate_font().face.charToGlyph)


def missing_characters(text: str) -> list[str]:
    """Return the distinct characters of ``text`` the font cannot draw (controls excepted), in order."""
    covered = _covered()
    missing: list[str] = []
    for character in text:
        if ord(character) not in covered and character.isprintable() and character not in missing:
            missing.append(character)
    return missing


def printable(text: str) -> str:
    """Return ``text`` with controls as spaces and characters outside the font as ``[U+XXXX]``."""
    covered = _covered()
    out = []
    for character in text:
        if not character.isprintable():
            out.append(" ")
        elif ord(character) in covered:
            out.append(character)
        else:
            out.append(f"[U+{ord(character):04X}]")
    return "".join(out)


def check_printable(**fields: str) -> None:
    """Refuse text the certificate could not print; every field is checked before failing once.

    Raises:
        InvalidInput: Some field holds characters outside the certificate font (GB 2312 and Latin).
    """
    problems = []
    for name, text in fields.items():
        missing = missing_characters(text)
        if missing:
            listed = ", ".join(f"{c} (U+{ord(c):04X})" for c in missing)
            problems.append({"pointer": f"/{name}", "reason": f"the certificate font cannot print {listed}"})
    if problems:
        raise InvalidInput(
            "the certificate would not print some characters (its font covers GB 2312 and Latin); "
            "write them another way, e.g. in pinyin or a common variant",
            problems,
        )
