"""Draw docs/grid_result.png: a grid result as Discord shows it (message, picture, embed, controls).

Run ``python docs/grid_result.py`` from the repository root. The picture is drawn by the chibi engine and
the controls are the bot's real ``result_view`` (labels, styles and rows), on Discord's dark theme.
Emoji are left out (no colour-emoji font is assumed); docs/bot.md shows the same rows as text, with them.
"""

from __future__ import annotations

import io
import sys
from datetime import UTC, datetime
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import discord  # noqa: E402

from bot.render import grid  # noqa: E402
from bot.studio import AvatarView  # noqa: E402
from bot.views.results import result_view  # noqa: E402
from generation.chibi.engine import ChibiEngine  # noqa: E402
from generation.prompt import parse_prompt  # noqa: E402

BACKGROUND = (49, 51, 56)
EMBED = (43, 45, 49)
TEXT = (219, 222, 225)
MUTED = (148, 155, 164)
ACCENT = (247, 168, 200)
STYLES = {
    discord.ButtonStyle.primary: (88, 101, 242),
    discord.ButtonStyle.secondary: (78, 80, 88),
    discord.ButtonStyle.success: (36, 128, 70),
    discord.ButtonStyle.danger: (218, 55, 60),
}
PROMPT = "pink twin tails, cat ears, smile"
SEED = 7


def font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    try:
        return ImageFont.truetype(name, size)
    except OSError:
        return ImageFont.load_default(size)


def avatars() -> tuple[list[AvatarView], list[bytes]]:
    engine = ChibiEngine()
    views, pictures = [], []
    for n in range(4):
        spec = parse_prompt(PROMPT, seed=SEED + n).spec
        pictures.append(engine.render(spec, 256))
        views.append(
            AvatarView(
                id=f"xK{n}q7Lm2Pw9Rt4Za"[:16],
                owner="discord:1",
                kind="prompt",
                prompt=PROMPT,
                spec=spec.to_json(),
                seed=SEED + n,
                engine="chibi",
                model=None,
                parent=None,
                width=256,
                height=256,
                favourite=False,
                created=datetime.now(UTC),
                blob_key="-",
            )
        )
    return views, pictures


def draw() -> Image.Image:
    views, pictures = avatars()
    view = result_view(views, "en")
    sheet = Image.open(io.BytesIO(grid(pictures, cell=200))).convert("RGBA")
    width, pad = 760, 24
    canvas = Image.new("RGBA", (width, 1000), BACKGROUND)
    d = ImageDraw.Draw(canvas)
    d.ellipse((pad, pad, pad + 40, pad + 40), fill=ACCENT)
    d.text((pad + 56, pad), "Chibify", font=font(16, True), fill=TEXT)
    d.text((pad + 128, pad + 2), "APP", font=font(11, True), fill=(88, 101, 242))
    d.text((pad + 56, pad + 22), "Here you go, @alice!", font=font(15), fill=TEXT)
    top = pad + 52
    box = (pad + 56, top, width - pad, top + 560)
    d.rounded_rectangle(box, 6, fill=EMBED)
    d.rectangle((box[0], box[1], box[0] + 4, box[3]), fill=ACCENT)
    x, y = box[0] + 16, top + 12
    d.text((x, y), PROMPT, font=font(14), fill=TEXT)
    y += 26
    d.text((x, y), "Understood", font=font(13, True), fill=TEXT)
    understood = ", ".join(f"{u.phrase} → {u.en}" for u in parse_prompt(PROMPT, seed=SEED).understood)
    d.text((x, y + 18), understood[:80], font=font(13), fill=MUTED)
    y += 44
    d.text((x, y), "Seed", font=font(13, True), fill=TEXT)
    d.text((x, y + 18), ", ".join(str(v.seed) for v in views), font=font(13), fill=MUTED)
    d.text((x + 160, y), "Avatar ids", font=font(13, True), fill=TEXT)
    d.text(
        (x + 160, y + 18),
        " ".join(f"{i + 1}: {v.id[:6]}…" for i, v in enumerate(views)),
        font=font(13),
        fill=MUTED,
    )
    y += 48
    canvas.alpha_composite(sheet, (x, y))
    y = box[3] + 10
    rows: dict[int, list[discord.ui.Item[discord.ui.View]]] = {}
    for child in view.children:
        rows.setdefault(child._rendered_row or 0, []).append(child)
    for _, items in sorted(rows.items()):
        bx = box[0]
        for child in items:
            item = child.item if isinstance(child, discord.ui.DynamicItem) else child
            if isinstance(item, discord.ui.Select):
                d.rounded_rectangle((bx, y, bx + 400, y + 38), 4, fill=(30, 31, 34), outline=(60, 62, 68))
                d.text((bx + 12, y + 10), item.placeholder or "", font=font(14), fill=MUTED)
                d.text((bx + 376, y + 8), "⌄", font=font(16), fill=MUTED)
                continue
            assert isinstance(item, discord.ui.Button)
            label = item.label or ""
            w = int(d.textlength(label, font=font(14))) + 32
            d.rounded_rectangle(
                (bx, y, bx + w, y + 34), 4, fill=STYLES.get(item.style, STYLES[discord.ButtonStyle.secondary])
            )
            d.text((bx + 16, y + 8), label, font=font(14), fill=(255, 255, 255))
            bx += w + 8
        y += 44
    return canvas.crop((0, 0, width, y + pad))


if __name__ == "__main__":
    out = ROOT / "docs" / "grid_result.png"
    draw().convert("RGB").save(out, optimize=True)
    print(f"wrote {out.relative_to(ROOT)}")
