"""Build the certificate font: a TrueType-outline subset of Noto Sans SC Regular (SIL OFL 1.1).

ReportLab embeds only TrueType (``glyf``) fonts; Noto Sans CJK / Source Han Sans are CFF and will not
embed. Google Fonts' static Noto Sans SC has ``glyf`` outlines. This script keeps, from it, the glyphs of
every character of GB 2312 (6,763 hanzi and 682 symbols), ASCII, Latin-1 and Latin Extended-A, general
punctuation, CJK symbols and punctuation, and the full-width forms — about 2.3 MB — and writes
``carbon/fonts/NotoSansSC-Regular-GB2312.ttf``. ReportLab subsets it again for each PDF.

Source (exact): the npm package ``@expo-google-fonts/noto-sans-sc@0.4.3``, file
``400Regular/NotoSansSC_400Regular.ttf`` (Noto Sans SC Version 2.004), licence ``LICENSE_FONT`` (the OFL,
copied to ``carbon/fonts/OFL.txt``). fontTools is needed only here, not at run time::

    cd /tmp && npm pack @expo-google-fonts/noto-sans-sc@0.4.3
    tar xzf expo-google-fonts-noto-sans-sc-0.4.3.tgz package/400Regular/NotoSansSC_400Regular.ttf
    pip install 'fonttools>=4.50'
    python scripts/build_cjk_font.py /tmp/package/400Regular/NotoSansSC_400Regular.ttf
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fontTools import subset
from fontTools.ttLib import TTFont

OUT = Path(__file__).resolve().parent.parent / "carbon" / "fonts" / "NotoSansSC-Regular-GB2312.ttf"
RANGES = [
    (0x0020, 0x007E),  # ASCII
    (0x00A0, 0x017F),  # Latin-1 supplement, Latin Extended-A
    (0x2000, 0x206F),  # general punctuation
    (0x3000, 0x303F),  # CJK symbols and punctuation
    (0xFF00, 0xFFEF),  # half-width and full-width forms
]


def gb2312_characters() -> set[str]:
    """Every character GB 2312 encodes (rows 0xA1-0xF7, cells 0xA1-0xFE)."""
    found = set()
    for row in range(0xA1, 0xF8):
        for cell in range(0xA1, 0xFF):
            try:
                found.add(bytes([row, cell]).decode("gb2312"))
            except UnicodeDecodeError:
                continue
    return found


def main() -> int:
    """Subset the source font into ``carbon/fonts``."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, help="NotoSansSC_400Regular.ttf")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    font = TTFont(args.source)
    if "glyf" not in font:
        print(f"{args.source} has no glyf table (CFF outlines do not embed in ReportLab)", file=sys.stderr)
        return 1
    characters = gb2312_characters() | {chr(c) for start, end in RANGES for c in range(start, end + 1)}
    options = subset.Options()
    options.layout_features = []  # ReportLab does no shaping; keep the file small
    options.name_IDs = ["*"]  # keep the copyright and licence records
    options.notdef_outline = True
    options.hinting = False
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=sorted(ord(c) for c in characters))
    subsetter.subset(font)
    font.save(args.out)
    hanzi = sum(1 for c in characters if 0x4E00 <= ord(c) <= 0x9FFF)
    print(f"{args.out}: {len(font.getGlyphOrder())} glyphs, {hanzi} hanzi, {args.out.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
