"""Contact sheet for docs/: avatar | toon for every shared photo (the photos themselves are not shown).

    .venv/bin/python -m bench.selfie_sheets [--photos ../shared/photos] [--out docs/selfie_sheet.png]

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


def build(photos: Path, out: Path) -> None:
    from generation.chibi import ChibiEngine

    engine = ChibiEngine()
    names = sorted(p.name for p in photos.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
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
    args = parser.parse_args(argv)
    if not args.photos.is_dir():
        print(f"no photos at {args.photos}", file=sys.stderr)
        return 1
    build(args.photos, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
