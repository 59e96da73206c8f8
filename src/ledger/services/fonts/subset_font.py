"""Rebuild NotoSansSC-Certificate.ttf, the CJK font shipped for certificates.

Source: Noto Sans CJK SC Regular (SIL Open Font License 1.1), e.g. Debian's
``fonts-noto-cjk`` (/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc).
Kept: printable ASCII, the whole of GB 2312 (its symbols, level 1 and level 2
hanzi: 7,445 characters), a few marks used in print and some name characters
outside GB 2312. The CFF outlines are converted to TrueType (quadratic)
outlines, because reportlab embeds TrueType fonts only.

    pip install fonttools
    python src/ledger/services/fonts/subset_font.py [SOURCE.ttc]
"""

from __future__ import annotations

import sys
from pathlib import Path

from fontTools import subset
from fontTools.pens.cu2quPen import Cu2QuPen
from fontTools.pens.ttGlyphPen import TTGlyphPen
from fontTools.ttLib import TTCollection, TTFont, newTable

SOURCE = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
FAMILY = "Noto Sans CJK SC"
TARGET = Path(__file__).with_name("NotoSansSC-Certificate.ttf")
# Beyond GB 2312: print marks, and name characters people commonly have.
EXTRA = "·•—―‘’“”…‰℃№￥〇" + "喆堃昇珺瑄璟祎玥旻昉晧炜犇琤瑀瑢镕啓玮赟頔彧璐"
# Cubic-to-quadratic tolerance, in font units (of 1,000 per em).
MAX_ERROR = 1.0


def gb2312() -> str:
    """Every character GB 2312 encodes: rows 1-9 (symbols) and 16-87 (hanzi)."""
    characters = []
    for row in (*range(1, 10), *range(16, 88)):
        for cell in range(1, 95):
            try:
                characters.append(bytes([row + 0xA0, cell + 0xA0]).decode("gb2312"))
            except UnicodeDecodeError:
                continue
    return "".join(characters)


def source_font(path: Path) -> TTFont:
    """The Simplified Chinese face of a Noto CJK collection (or a single font)."""
    if path.suffix.lower() != ".ttc":
        return TTFont(path)
    for font in TTCollection(path).fonts:
        if font["name"].getDebugName(1) == FAMILY:
            return font
    raise SystemExit(f"{path} has no '{FAMILY}' face")


def to_truetype(font: TTFont) -> None:
    """Replace the font's CFF outlines by TrueType ones (glyf, loca)."""
    glyph_set = font.getGlyphSet()
    glyf = newTable("glyf")
    glyf.glyphOrder = font.getGlyphOrder()
    glyf.glyphs = {}
    for name in glyf.glyphOrder:
        pen = TTGlyphPen(glyph_set)
        glyph_set[name].draw(Cu2QuPen(pen, MAX_ERROR, reverse_direction=True))
        glyf.glyphs[name] = pen.glyph()
    font["glyf"] = glyf
    font["loca"] = newTable("loca")
    del font["CFF "]
    if "VORG" in font:
        del font["VORG"]
    maxp = font["maxp"]
    maxp.tableVersion = 0x00010000
    maxp.maxZones = 1
    for field in (
        "maxTwilightPoints",
        "maxStorage",
        "maxFunctionDefs",
        "maxInstructionDefs",
        "maxStackElements",
        "maxSizeOfInstructions",
    ):
        setattr(maxp, field, 0)
    font["head"].indexToLocFormat = 0
    font["head"].glyphDataFormat = 0
    font["post"].formatType = 3.0
    font.sfntVersion = "\x00\x01\x00\x00"


def main(source: Path) -> None:
    font = source_font(source)
    text = "".join(chr(code) for code in range(0x20, 0x7F)) + gb2312() + EXTRA
    options = subset.Options()
    options.layout_features = ["kern", "vert", "vrt2"]
    options.name_IDs = ["*"]
    options.notdef_outline = True
    options.hinting = False
    subsetter = subset.Subsetter(options)
    subsetter.populate(text=text)
    subsetter.subset(font)
    to_truetype(font)
    font.save(TARGET)
    covered = set(font.getBestCmap())
    missing = [c for c in text if ord(c) not in covered]
    print(f"{TARGET}: {TARGET.stat().st_size:,} bytes, {len(covered):,} characters")
    if missing:
        print(f"not in the source font: {''.join(missing)}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else SOURCE)
