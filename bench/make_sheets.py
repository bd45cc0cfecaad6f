"""Render the contact sheets in docs/contact_sheets/ and docs/gallery.png.

.venv/bin/python bench/make_sheets.py            # all sheets
.venv/bin/python bench/make_sheets.py items      # one sheet by name
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from generation import catalog
from generation.chibi import ChibiEngine
from generation.spec import AvatarSpec

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "contact_sheets"
ENGINE = ChibiEngine()
FONT = ImageFont.load_default(size=13)
BASE = AvatarSpec(
    seed=7,
    face_shape="round",
    skin_tone="light",
    eyes={"style": "round", "color": "#3b6fd1"},
    brows="soft",
    expression="smile",
    blush="soft",
    nose="dot",
    hair={"style": "short", "color": "#4a3128"},
    outfit={"style": "hoodie", "color": "#8cc8f0"},
    background={"kind": "solid", "color": "#eadcff"},
)


def tile(spec: AvatarSpec, size: int, label: str) -> Image.Image:
    img = Image.fromarray(ENGINE.render_rgba(spec, size)).convert("RGB")
    canvas = Image.new("RGB", (size, size + 18), "white")
    canvas.paste(img, (0, 0))
    ImageDraw.Draw(canvas).text((4, size + 2), label[:28], fill=(60, 50, 70), font=FONT)
    return canvas


def grid(tiles: list[Image.Image], cols: int, title: str) -> Image.Image:
    w, h = tiles[0].size
    rows = (len(tiles) + cols - 1) // cols
    sheet = Image.new("RGB", (cols * w, rows * h + 26), "white")
    ImageDraw.Draw(sheet).text((6, 5), title, fill=(40, 30, 50), font=ImageFont.load_default(size=16))
    for i, t in enumerate(tiles):
        r, c = divmod(i, cols)
        sheet.paste(t, (c * w, 26 + r * h))
    return sheet


def save(img: Image.Image, path: Path) -> None:
    q = img.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    q.save(path, optimize=True)
    print(f"{path.relative_to(ROOT)}: {img.size[0]}x{img.size[1]}, {path.stat().st_size // 1024} KB")


def hair_x_skin() -> None:
    tones = catalog.ids("skin_tone")
    colors = ["#2b2630", "#4a3128", "#7a4e34", "#f2cf6f", "#d8723a", "#f49ac1", "#c3c7d1", "#8cc8f0"]
    tiles = []
    for i, style in enumerate(catalog.ids("hair_style")):
        for j, tone in enumerate(tones):
            s = BASE.replace(
                skin_tone=tone,
                hair={"style": style, "color": colors[(i + j) % len(colors)]},
                expression=("smile", "grin", "cat_mouth", "laugh")[(i + j) % 4],
                face_shape=catalog.ids("face_shape")[(i * 3 + j) % 5],
            )
            tiles.append(tile(s, 128, f"{style} / {tone}"))
    save(
        grid(tiles, len(tones), "hair styles (rows) x skin tones (columns)"),
        OUT / "hair_styles_x_skin_tones.png",
    )


def expressions() -> None:
    tiles = []
    people = [
        BASE.replace(hair={"style": "long_straight", "color": "#2b2630"}, skin_tone="fair"),
        BASE.replace(
            hair={"style": "afro", "color": "#2b2630"},
            skin_tone="deep",
            eyes={"style": "gentle", "color": "#5a3a2a"},
        ),
    ]
    for p in people:
        for e in catalog.ids("expression"):
            tiles.append(tile(p.replace(expression=e), 160, e))
    for st in catalog.ids("eye_style"):
        tiles.append(tile(people[0].replace(eyes={"style": st, "color": "#8a5cc7"}), 160, f"eyes: {st}"))
    for b in catalog.ids("brows"):
        tiles.append(tile(people[0].replace(brows=b, hair={"front": "open"}), 160, f"brows: {b}"))
    for n in catalog.ids("nose"):
        tiles.append(tile(people[0].replace(nose=n), 160, f"nose: {n}"))
    for b in catalog.ids("blush"):
        tiles.append(tile(people[1].replace(blush=b), 160, f"blush: {b}"))
    for fr in catalog.ids("hair_front"):
        tiles.append(
            tile(BASE.replace(hair={"style": "bob", "front": fr, "color": "#d8723a"}), 160, f"fringe: {fr}")
        )
    save(
        grid(tiles, 8, "expressions, eye styles, brows, noses, blush, fringes"),
        OUT / "expressions_and_features.png",
    )


def items_head() -> None:
    styles = ["short", "long_wavy", "afro", "bun", "curly", "twin_tails", "spiky", "braids"]
    head_items = [
        i.id
        for i in catalog.ITEMS
        if i.slot in ("head_top", "ears", "hair_accessory", "headphones", "head_wrap")
    ]
    tiles = []
    for item in head_items:
        for k, st in enumerate(styles):
            s = BASE.replace(
                hair={"style": st, "color": ("#4a3128", "#f2cf6f", "#2b2630", "#f49ac1")[k % 4]},
                face_shape=catalog.ids("face_shape")[k % 5],
                skin_tone=catalog.ids("skin_tone")[(k * 3) % 10],
                items=[item],
            )
            tiles.append(tile(s, 112, f"{item} / {st}"))
    save(grid(tiles, len(styles), "head items on 8 hair styles and 5 face shapes"), OUT / "items_head.png")


def items_other() -> None:
    styles = ["long_straight", "bob", "afro", "buzz"]
    other = [
        i.id
        for i in catalog.ITEMS
        if i.slot not in ("head_top", "ears", "hair_accessory", "headphones", "head_wrap")
    ]
    tiles = []
    for item in other:
        for k, st in enumerate(styles):
            s = BASE.replace(
                hair={"style": st, "color": ("#7a4e34", "#c7b3ec", "#2b2630", "#2b2630")[k]},
                face_shape=catalog.ids("face_shape")[(k + 2) % 5],
                skin_tone=catalog.ids("skin_tone")[(k * 3 + 1) % 10],
                facial_hair="beard" if st == "buzz" and item == "bow_tie" else "none",
                items=[item],
            )
            tiles.append(tile(s, 112, f"{item} / {st}"))
    save(grid(tiles, 8, "face, neck, back and held items on 4 hair styles"), OUT / "items_face_body.png")


def outfits_backgrounds() -> None:
    tiles = []
    cols = ["#f49ac1", "#4a7fd9", "#a6e3c8", "#d94452", "#c7b3ec", "#4b4f58"]
    for i, o in enumerate(catalog.ids("outfit")):
        tiles.append(tile(BASE.replace(outfit={"style": o, "color": cols[i % 6]}), 144, f"outfit: {o}"))
    for i, b in enumerate(catalog.ids("background")):
        tiles.append(
            tile(
                BASE.replace(background={"kind": b, "color": ("#ffd6e7", "#d6ecff", "#dff7e9")[i % 3]}),
                144,
                f"bg: {b}",
            )
        )
    for i, fh in enumerate(catalog.ids("facial_hair")):
        for shape in catalog.ids("face_shape"):
            s = BASE.replace(
                facial_hair=fh,
                face_shape=shape,
                hair={"style": "short", "color": ("#2b2630", "#7a4e34", "#c3c7d1")[i % 3]},
                skin_tone=catalog.ids("skin_tone")[(i * 2 + 1) % 10],
            )
            tiles.append(tile(s, 144, f"{fh} / {shape}"))
    save(
        grid(tiles, 6, "outfits, backgrounds, facial hair x face shapes"),
        OUT / "outfits_backgrounds_beards.png",
    )


def face_shapes() -> None:
    """Every face shape plain, bald, bearded, and in a hijab with glasses or a hat on top."""
    rows: list[tuple[str, dict[str, Any]]] = [
        ("short hair", {"hair": {"style": "short", "color": "#4a3128"}}),
        ("bald", {"hair": {"style": "bald"}, "skin_tone": "deep"}),
        ("beard, grey", {"hair": {"style": "short", "color": "#c3c7d1"}, "facial_hair": "beard"}),
        ("hijab + glasses", {"items": ["hijab", "square_glasses"], "skin_tone": "tan"}),
        (
            "hijab + beret",
            {
                "items": ["hijab", "beret"],
                "skin_tone": "ebony",
                "outfit": {"style": "sweater", "color": "#2c3b6b"},
            },
        ),
    ]
    tiles = []
    for label, kw in rows:
        for shape in catalog.ids("face_shape"):
            tiles.append(tile(BASE.replace(face_shape=shape, **kw), 144, f"{shape} / {label}"))
    save(grid(tiles, 5, "face shapes (columns): round, oval, heart, square, long"), OUT / "face_shapes.png")


def sizes() -> None:
    specs = gallery_specs()[:6]
    big = Image.new("RGB", (1024 + 6 * 64 + 40, 1024 + 30), "white")
    d = ImageDraw.Draw(big)
    d.text(
        (6, 6),
        "48 px (as Discord shows it) and 1024 px",
        fill=(40, 30, 50),
        font=ImageFont.load_default(size=16),
    )
    for i, s in enumerate(specs):
        small = Image.fromarray(ENGINE.render_rgba(s, 512)).resize((48, 48), Image.Resampling.LANCZOS)
        mask = Image.new("L", (48, 48), 0)
        ImageDraw.Draw(mask).ellipse((0, 0, 47, 47), fill=255)
        big.paste(small.convert("RGB"), (20 + (i % 2) * 64, 40 + (i // 2) * 64), mask)
        big.paste(small.convert("RGB"), (160 + (i % 2) * 64, 40 + (i // 2) * 64))
    large = Image.fromarray(ENGINE.render_rgba(specs[0], 1024)).convert("RGB")
    big.paste(large, (6 * 64 + 40, 30))
    save(big, OUT / "sizes_48_vs_1024.png")


def gallery_specs() -> list[AvatarSpec]:
    return [
        AvatarSpec(
            seed=1,
            skin_tone="deep",
            hair={"style": "afro", "color": "#2b2630"},
            expression="grin",
            eyes={"style": "sparkle", "color": "#c58b2a"},
            items=["headphones"],
            outfit={"style": "hoodie", "color": "#f7d84a"},
            background={"kind": "dots", "color": "#d6ecff"},
        ),
        AvatarSpec(
            seed=2,
            skin_tone="porcelain",
            hair={"style": "twin_tails", "color": "#f49ac1", "front": "bangs"},
            expression="wink",
            items=["cat_ears"],
            outfit={"style": "sailor", "color": "#4a7fd9"},
            background={"kind": "hearts", "color": "#ffd6e7"},
        ),
        AvatarSpec(
            seed=3,
            skin_tone="tan",
            hair={"style": "short", "color": "#4a3128"},
            facial_hair="beard",
            expression="smile",
            items=["round_glasses"],
            outfit={"style": "sweater", "color": "#a6e3c8"},
            background={"kind": "solid", "color": "#dff7e9"},
        ),
        AvatarSpec(
            seed=4,
            skin_tone="beige",
            expression="smile",
            items=["hijab", "round_glasses"],
            outfit={"style": "dress", "color": "#c7b3ec"},
            eyes={"style": "gentle", "color": "#5a3a2a"},
            background={"kind": "gradient", "color": "#eadcff"},
        ),
        AvatarSpec(
            seed=5,
            skin_tone="ebony",
            hair={"style": "braids", "color": "#2b2630"},
            expression="laugh",
            items=["earrings"],
            outfit={"style": "blazer", "color": "#d94452"},
            background={"kind": "stripes", "color": "#fff1c9"},
        ),
        AvatarSpec(
            seed=6,
            skin_tone="fair",
            hair={"style": "long_wavy", "color": "#c3c7d1"},
            expression="sleepy",
            items=["witch_hat"],
            outfit={"style": "robe", "color": "#4b3a78"},
            background={"kind": "stars", "color": "#d6ecff"},
        ),
        AvatarSpec(
            seed=8,
            skin_tone="caramel",
            hair={"style": "curly", "color": "#7a4e34"},
            expression="love",
            items=["bow"],
            outfit={"style": "tshirt", "color": "#ffbf9b"},
            background={"kind": "hearts", "color": "#ffe1d0"},
        ),
        AvatarSpec(
            seed=9,
            skin_tone="light",
            hair={"style": "spiky", "color": "#f2cf6f"},
            expression="determined",
            eyes={"style": "sharp", "color": "#d9455f"},
            items=["bandage"],
            outfit={"style": "armor", "color": "#4a7fd9"},
            background={"kind": "gradient", "color": "#fff1c9"},
        ),
        AvatarSpec(
            seed=10,
            skin_tone="brown",
            hair={"style": "bun", "color": "#3fb6b2"},
            expression="cat_mouth",
            items=["boba_tea"],
            outfit={"style": "kimono", "color": "#f49ac1"},
            background={"kind": "dots", "color": "#f3e6ff"},
        ),
        AvatarSpec(
            seed=11,
            skin_tone="ivory",
            hair={"style": "bob", "color": "#2b2630"},
            expression="shy",
            eyes={"style": "droopy", "color": "#3a9a6a"},
            items=["beret"],
            outfit={"style": "cape", "color": "#2c3b6b"},
            background={"kind": "solid", "color": "#ffd6e7"},
        ),
        AvatarSpec(
            seed=12,
            skin_tone="fair",
            hair={"style": "buzz", "color": "#c3c7d1"},
            facial_hair="moustache",
            expression="smirk",
            items=["top_hat", "bow_tie"],
            outfit={"style": "suit", "color": "#4b4f58"},
            background={"kind": "stripes", "color": "#d9f4f4"},
        ),
        AvatarSpec(
            seed=13,
            skin_tone="beige",
            hair={"style": "ponytail", "color": "#d8723a"},
            expression="tongue_out",
            items=["angel_wings", "halo"],
            outfit={"style": "spacesuit", "color": "#8cc8f0"},
            background={"kind": "stars", "color": "#eadcff"},
        ),
    ]


def gallery() -> None:
    tiles = [Image.fromarray(ENGINE.render_rgba(s, 256)).convert("RGB") for s in gallery_specs()]
    pad = 12
    sheet = Image.new("RGB", (4 * 256 + 5 * pad, 3 * 256 + 4 * pad), "#fffaf5")
    for i, t in enumerate(tiles):
        r, c = divmod(i, 4)
        mask = Image.new("L", (256, 256), 0)
        ImageDraw.Draw(mask).rounded_rectangle((0, 0, 255, 255), radius=40, fill=255)
        sheet.paste(t, (pad + c * (256 + pad), pad + r * (256 + pad)), mask)
    save(sheet, ROOT / "docs" / "gallery.png")


LIKENESS_PROMPTS: tuple[str, ...] = (
    "光头老爷爷，白胡子",
    "兔耳朵，害羞，薰衣草色波波头",
    "an angel with a halo and wings, white hair",
    "dark skin, curly black afro, big smile",
    "背景是樱花",
    "an elf with pointy ears and a flower crown",
    "shy girl, pink bob",
    "灰白头发，两鬓斑白的大叔",
)


# The sheet's font has no Chinese glyphs: Chinese prompts are labelled with a gloss.
ZH_GLOSS = {
    "光头老爷爷，白胡子": "zh: bald grandpa, white beard",
    "兔耳朵，害羞，薰衣草色波波头": "zh: bunny ears, shy, lavender bob",
    "背景是樱花": "zh: background is sakura",
    "灰白头发，两鬓斑白的大叔": "zh: man, greying, grey temples",
}


def likeness_specs() -> list[tuple[AvatarSpec, str]]:
    """The issue-15 cases: buzz cuts, afros and coils, hair the colour of the outfit, shy, grey, prompts."""
    from generation.prompt import parse_prompt

    out: list[tuple[AvatarSpec, str]] = []
    for tone, color in (("deep", "#2b2630"), ("fair", "#4a3128"), ("tan", "#f2cf6f"), ("ebony", "#2b2630")):
        out.append((BASE.replace(skin_tone=tone, hair={"style": "buzz", "color": color}), f"buzz / {tone}"))
    for style, tone, color in (
        ("afro", "deep", "#2b2630"),
        ("afro", "brown", "#4a3128"),
        ("curly", "ebony", "#2b2630"),
        ("curly", "caramel", "#7a4e34"),
    ):
        out.append((BASE.replace(skin_tone=tone, hair={"style": style, "color": color}), f"{style} / {tone}"))
    for style, color, outfit in (
        ("long_straight", "#2b2630", "hoodie"),
        ("long_wavy", "#7a4e34", "hoodie"),
        ("long_straight", "#f49ac1", "sweater"),
        ("hime", "#4b4f58", "hoodie"),
    ):
        spec = BASE.replace(hair={"style": style, "color": color}, outfit={"style": outfit, "color": color})
        out.append((spec, f"{style} = {outfit}"))
    for tone, style in (("fair", "long_straight"), ("deep", "afro"), ("light", "bob"), ("tan", "short")):
        spec = BASE.replace(skin_tone=tone, hair={"style": style, "color": "#4a3128"}, expression="shy")
        out.append((spec, f"shy / {style}"))
    grey = getattr(catalog, "HAIR_GREY", ())
    for g in grey:
        for style, tone, color in (("short", "fair", "#2b2630"), ("buzz", "brown", "#4a3128")):
            spec = BASE.replace(skin_tone=tone, hair={"style": style, "color": color, "grey": g.id})
            out.append((spec, f"grey {g.id} / {style}"))
    for text in LIKENESS_PROMPTS:
        label = ZH_GLOSS.get(text, text)
        out.append((parse_prompt(text, seed=11).spec, label))
    return out


def likeness(suffix: str = "") -> None:
    """likeness.png; likeness_before.png beside it was rendered with this list from the code before issue
    15's art and parser changes (and the parses recorded then), and is kept as it is."""
    tiles = [tile(s, 160, label) for s, label in likeness_specs()]
    save(
        grid(tiles, 4, "issue 15: buzz, afro/coils, hair = outfit colour, shy, grey, prompts"),
        OUT / f"likeness{suffix}.png",
    )


SHEETS: dict[str, Callable[[], None]] = {
    "likeness": likeness,
    "hair": hair_x_skin,
    "expressions": expressions,
    "items": items_head,
    "items2": items_other,
    "outfits": outfits_backgrounds,
    "shapes": face_shapes,
    "sizes": sizes,
    "gallery": gallery,
}


def main(argv: list[str]) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name in argv or list(SHEETS):
        SHEETS[name]()
    _ = np


if __name__ == "__main__":
    main(sys.argv[1:])
