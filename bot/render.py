"""Pictures and embeds for Discord: the 2x2 result grid, the 3x3 history sheet, the result embed.

The image helpers are plain Pillow work; callers run them in a thread (``asyncio.to_thread``).
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import discord
from PIL import Image, ImageDraw

from bot.i18n import t
from bot.studio import AvatarView, Outcome

GRID_CELL = 512
THUMB = 160
EMBED_COLOUR = 0xF7A8C8


def _open(data: bytes, side: int) -> Image.Image:
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        rgba = im.convert("RGBA")
    if rgba.size != (side, side):
        rgba = rgba.resize((side, side), Image.Resampling.LANCZOS)
    return rgba


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG", compress_level=1)
    return out.getvalue()


def grid(images: Sequence[bytes], cell: int = GRID_CELL) -> bytes:
    """Up to four images as one 2x2 PNG, numbered 1-4 in reading order."""
    if not images:
        raise ValueError("no images to put in a grid")
    sheet = Image.new("RGBA", (cell * 2, cell * 2), (255, 255, 255, 0))
    draw = ImageDraw.Draw(sheet)
    for index, data in enumerate(images[:4]):
        x, y = (index % 2) * cell, (index // 2) * cell
        sheet.paste(_open(data, cell), (x, y))
        draw.ellipse((x + 10, y + 10, x + 54, y + 54), fill=(255, 255, 255, 220), outline=(80, 80, 80, 255))
        draw.text((x + 27, y + 32), str(index + 1), fill=(40, 40, 40, 255), anchor="mm", font_size=28)
    return _png(sheet)


def thumbnails(images: Sequence[bytes], cell: int = THUMB) -> bytes:
    """Up to nine images as a 3x3 contact sheet, numbered in reading order."""
    if not images:
        raise ValueError("no images for a contact sheet")
    rows = (min(len(images), 9) + 2) // 3
    sheet = Image.new("RGBA", (cell * 3, cell * rows), (255, 255, 255, 0))
    draw = ImageDraw.Draw(sheet)
    for index, data in enumerate(images[:9]):
        x, y = (index % 3) * cell, (index // 3) * cell
        sheet.paste(_open(data, cell), (x, y))
        draw.text((x + 8, y + 6), str(index + 1), fill=(40, 40, 40, 255), font_size=20)
    return _png(sheet)


def result_embed(outcome: Outcome, language: str, image_name: str) -> discord.Embed:
    """What was understood / ignored / changed, seeds and avatar ids, with the image."""
    avatars = outcome.avatars
    first = avatars[0]
    embed = discord.Embed(colour=EMBED_COLOUR, description=(first.prompt or None) and first.prompt[:300])
    if outcome.understood:
        embed.add_field(
            name=t("understood", language),
            value=", ".join(f"{u.phrase} → {u.zh if language == 'zh' else u.en}" for u in outcome.understood)[
                :1000
            ],
            inline=False,
        )
    if outcome.ignored:
        embed.add_field(name=t("ignored", language), value=", ".join(outcome.ignored)[:1000], inline=False)
    if outcome.changes:
        embed.add_field(name=t("changes", language), value="; ".join(outcome.changes)[:1000], inline=False)
    if outcome.notes:
        embed.add_field(name=t("notes", language), value="\n".join(outcome.notes)[:1000], inline=False)
    embed.add_field(name=t("seed", language), value=", ".join(str(a.seed) for a in avatars), inline=True)
    key = "avatar_id" if len(avatars) == 1 else "avatar_ids"
    embed.add_field(
        name=t(key, language),
        value=" ".join(
            f"`{i + 1}: {a.id}`" if len(avatars) > 1 else f"`{a.id}`" for i, a in enumerate(avatars)
        ),
        inline=True,
    )
    if outcome.failures:
        embed.add_field(name=t("failures", language), value="\n".join(outcome.failures)[:1000], inline=False)
    embed.set_image(url=f"attachment://{image_name}")
    return embed


def avatar_embed(avatar: AvatarView, language: str, image_name: str) -> discord.Embed:
    """One stored avatar (history, /show)."""
    embed = discord.Embed(colour=EMBED_COLOUR, description=(avatar.prompt or "")[:300] or None)
    embed.add_field(name=t("avatar_id", language), value=f"`{avatar.id}`", inline=True)
    embed.add_field(name=t("seed", language), value=str(avatar.seed), inline=True)
    if avatar.favourite:
        embed.add_field(name="★", value=t("favourite_on", language, id=avatar.id), inline=False)
    embed.set_image(url=f"attachment://{image_name}")
    return embed


def components_text(view: discord.ui.View) -> str:
    """A view's rows as text, the way Discord lays them out: ``[🔍 1] [V1] ...`` for buttons and
    ``[Download as… ▾]`` for a select (docs/bot.md shows a grid result this way; a test keeps it true)."""
    rows: dict[int, list[str]] = {}
    for child in view.children:
        row = child._rendered_row if child._rendered_row is not None else (child.row or 0)
        item = child.item if isinstance(child, discord.ui.DynamicItem) else child
        if isinstance(item, discord.ui.Select):
            text = f"[{item.placeholder or ''} ▾]"
        elif isinstance(item, discord.ui.Button):
            emoji = f"{item.emoji} " if item.emoji else ""
            text = f"[{emoji}{item.label or ''}]"
        else:
            continue
        rows.setdefault(row, []).append(text)
    return "\n".join(" ".join(parts) for _, parts in sorted(rows.items()))
