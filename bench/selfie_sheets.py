"""Contact sheet for docs/: avatar | toon for every shared photo (the photos themselves are not shown).

    .venv/bin/python -m bench.selfie_sheets [--photos ../shared/photos] [--out docs/selfie_sheet.png]
    .venv/bin/python -m bench.selfie_sheets --photos ../shared/photos/more --columns 4 --tile 200 \
        --out docs/contact_sheets/selfies_more.png

With ``--columns`` the sheet is a grid of avatars only, each captioned with what was read from the photo.

The photos are public figures for tests only, so the sheet shows only what Chibify makes from them, labelled
with the file name and the measured attributes.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from generation.face import PhotoError, analyze, toon

TILE = 256


def _label(draw: ImageDraw.ImageDraw, xy: tuple[int, int], text: str) -> None:
    font = ImageFont.load_default(size=13)
    draw.text(xy, text, fill=(40, 40, 50), font=font)


def build(photos: Path, out: Path, columns: int = 0, tile: int = TILE) -> None:
    from generation.chibi import ChibiEngine

    engine = ChibiEngine()
    names = sorted(p.name for p in photos.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if columns:
        _grid(engine, photos, names, out, columns, tile)
        return
    rows = []
    for name in names:
        data = (photos / name).read_bytes()
        try:
            result = analyze(data)
        except PhotoError as exc:
            rows.append((name, None, None, f"{exc.category}: {exc}"))
            continue
        avatar = Image.open(io.BytesIO(engine.render(result.spec, TILE))).convert("RGB")
        cartoon = Image.open(io.BytesIO(toon(data, analysis=result, size=TILE))).convert("RGB")
        a = result.attributes
        caption = (
            f"skin {a['skin_tone'].value}, hair {a['hair_color'].value} {a['hair_length'].value} "
            f"{a['hair_type'].value}, {a['facial_hair'].value}, {a['expression'].value}, "
            f"glasses {a['glasses_kind'].value}"
        )
        rows.append((name, avatar, cartoon, caption))
    header = 22
    sheet = Image.new("RGB", (2 * TILE + 30, len(rows) * (TILE + header + 18) + 10), (250, 248, 252))
    draw = ImageDraw.Draw(sheet)
    y = 8
    for name, avatar, cartoon, caption in rows:
        _label(draw, (10, y), name)
        y += header
        if avatar is not None and cartoon is not None:
            sheet.paste(avatar, (10, y))
            sheet.paste(cartoon, (20 + TILE, y))
        else:
            draw.rectangle((10, y, 20 + 2 * TILE, y + TILE), outline=(200, 190, 210))
            for i, chunk in enumerate(_wrap(caption, 60)):
                _label(draw, (20, y + 20 + 16 * i), chunk)
        _label(draw, (10, y + TILE + 2), caption[:78] if avatar is not None else "")
        y += TILE + 18
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out, optimize=True)
    print(f"wrote {out} ({len(rows)} photos)")


def _grid(engine: object, photos: Path, names: list[str], out: Path, columns: int, tile: int) -> None:
    """Avatars in a grid, each with its file name and the reading in words (four short lines at most)."""
    cells = []
    for name in names:
        try:
            result = analyze((photos / name).read_bytes())
        except PhotoError as exc:
            cells.append((name, None, f"{exc.category}"))
            continue
        png = engine.render(result.spec, tile)  # type: ignore[attr-defined]
        cells.append((name, Image.open(io.BytesIO(png)).convert("RGB"), result.describe("en")))
    cap_lines, line_h = 4, 15
    cell_w, cell_h = tile + 16, 20 + tile + cap_lines * line_h + 10
    rows = -(-len(cells) // columns)
    sheet = Image.new("RGB", (columns * cell_w + 8, rows * cell_h + 8), (250, 248, 252))
    draw = ImageDraw.Draw(sheet)
    chars = max(16, tile // 7)
    for i, (name, avatar, caption) in enumerate(cells):
        x, y = 8 + (i % columns) * cell_w, 8 + (i // columns) * cell_h
        _label(draw, (x, y), name[: chars + 4])
        if avatar is not None:
            sheet.paste(avatar, (x, y + 18))
        else:
            draw.rectangle((x, y + 18, x + tile, y + 18 + tile), outline=(200, 190, 210))
        for j, chunk in enumerate(_wrap(caption, chars)[:cap_lines]):
            _label(draw, (x, y + 20 + tile + j * line_h), chunk)
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out, optimize=True)
    print(f"wrote {out} ({len(cells)} photos)")


def _wrap(text: str, width: int) -> list[str]:
    words, lines, line = text.split(), [], ""
    for w in words:
        if len(line) + len(w) + 1 > width:
            lines.append(line)
            line = w
        else:
            line = f"{line} {w}".strip()
    return [*lines, line]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--photos", type=Path, default=Path("../shared/photos"))
    parser.add_argument("--out", type=Path, default=Path("docs/selfie_sheet.png"))
    parser.add_argument("--columns", type=int, default=0, help="a grid of avatars with what was read")
    parser.add_argument("--tile", type=int, default=TILE)
    args = parser.parse_args(argv)
    if not args.photos.is_dir():
        print(f"no photos at {args.photos}", file=sys.stderr)
        return 1
    build(args.photos, args.out, args.columns, args.tile)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
