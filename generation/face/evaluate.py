"""Accuracy of the analysis against hand labels (``labels.json`` beside the photos).

    .venv/bin/python -m generation.face.evaluate [../shared/photos]
    .venv/bin/python -m generation.face.evaluate ../shared/photos/more
    .venv/bin/python -m generation.face.evaluate --skin-table ../shared/photos/more

Where the labels name each photo's person, the accuracy is given separately for the people the thresholds were
tuned on (:data:`TUNED_PEOPLE`) and for the people held back.

Labels are coarse (skin light/medium/dark, five hair colours, ...); :func:`coarse` maps an analysis onto them.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from generation import catalog
from generation.face.analyze import HAIR_COLOR_CLASS, Attribute, analyze
from generation.face.decode import PhotoError

__all__ = ["LABELLED", "SKIN_CLASS", "TUNED_PEOPLE", "coarse", "evaluate"]

#: The attributes labels.json gives for each face (a photo set without one simply has no total for it).
LABELLED = (
    "skin_tone",
    "hair_color",
    "hair_length",
    "curly",
    "facial_hair",
    "glasses",
    "smiling",
    "eye_color",
    "outfit_kind",
    "outfit_tone",
)

#: People in ../shared/photos/more whose photos the thresholds were tuned on; the others are held back.
TUNED_PEOPLE = frozenset(
    {"Angelina Jolie", "Jennifer Aniston", "Leonardo DiCaprio", "Mark Zuckerberg", "Matt Damon"}
)

#: Catalog outfits folded onto the labels' garment kinds. The catalog has no separate "top", "jacket" or
#: "shirt": a bare-shouldered top is drawn as a dress and a jacket over a shirt as a suit, so those labels count
#: as right when the drawing would show that.
OUTFIT_CLASS: dict[str, str] = {"suit": "suit", "blazer": "suit", "dress": "dress", "tshirt": "tshirt",
                                "hoodie": "hoodie", "sweater": "sweater"}  # fmt: skip
LABEL_OUTFIT: dict[str, str] = {"top": "dress", "jacket": "suit", "shirt": "tshirt"}

#: The 10-step catalog scale folded onto the labels' three classes.
SKIN_CLASS: dict[str, str] = {
    **dict.fromkeys(("porcelain", "ivory", "fair", "light", "beige"), "light"),
    **dict.fromkeys(("tan", "caramel"), "medium"),
    **dict.fromkeys(("brown", "deep", "ebony"), "dark"),
}
assert set(SKIN_CLASS) == set(catalog.ids("skin_tone"))


def coarse(attrs: Mapping[str, Attribute]) -> dict[str, Any]:
    """An analysis in the vocabulary of labels.json."""
    length = attrs["hair_length"].value
    facial = attrs["facial_hair"].value
    eye = attrs["eye_color"].value
    return {
        "skin_tone": SKIN_CLASS.get(str(attrs["skin_tone"].value)),
        "hair_color": HAIR_COLOR_CLASS.get(str(attrs["hair_color"].value)),
        "hair_length": "short" if length in ("bald", "buzz") else length,
        "curly": attrs["curly"].value,
        "facial_hair": "beard" if facial in ("moustache", "goatee") else facial,
        "glasses": attrs["glasses"].value,
        "smiling": attrs["smiling"].value,
        # hazel counts as light: the labels' light is blue, green or grey, dark is brown
        "eye_color": None if eye is None else "dark" if eye == "brown" else "light",
        "outfit_kind": OUTFIT_CLASS.get(str(attrs["outfit"].value)),
        "outfit_tone": attrs["outfit_tone"].value,
    }


def evaluate(photos: Path, group: str | None = None) -> dict[str, Any]:
    """Per-attribute hits and totals over every labelled face, plus each photo's result.

    ``group``: None for every photo, ``"tuned"`` or ``"held_back"`` for the photos of the people in
    :data:`TUNED_PEOPLE` or of the others (photos without a ``person`` are in neither).
    """
    labels = json.loads((photos / "labels.json").read_text(encoding="utf-8"))
    hits = dict.fromkeys(LABELLED, 0)
    totals = dict.fromkeys(LABELLED, 0)
    per_photo: dict[str, Any] = {}
    for name, label in sorted(labels.items()):
        if name.startswith("_") or not isinstance(label.get("faces"), int) or label["faces"] != 1:
            continue
        person = label.get("person")
        if group is not None and (person is None or (person in TUNED_PEOPLE) != (group == "tuned")):
            continue
        try:
            got = coarse(analyze((photos / name).read_bytes()).attributes)
        except PhotoError as exc:
            got = {"error": exc.category}
        row = {}
        for key in LABELLED:
            want = label.get(key)
            if key == "outfit_kind" and want is not None:
                want = LABEL_OUTFIT.get(want, want)
            if want is None:
                continue
            totals[key] += 1
            ok = got.get(key) == want
            hits[key] += ok
            row[key] = {"want": want, "got": got.get(key), "ok": ok}
        per_photo[name] = row
    return {"hits": hits, "totals": totals, "photos": per_photo}


#: Relighting used by :func:`skin_table` (per-channel gains on RGB, clipped): the tests use the same.
RELIGHTS: dict[str, tuple[float, float, float]] = {
    "warm": (1.1, 1.0, 0.78),
    "cool": (0.85, 0.97, 1.12),
    "dim": (0.6, 0.6, 0.6),
    "bright": (1.2, 1.2, 1.2),
}


def relight(data: bytes, gains: tuple[float, float, float]) -> bytes:
    """The photo with its RGB channels multiplied by ``gains`` (a colour cast or an exposure), as PNG."""
    import io

    import numpy as np
    from PIL import Image

    rgb = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.float32)
    out = io.BytesIO()
    Image.fromarray(np.clip(rgb * np.array(gains, np.float32), 0, 255).astype(np.uint8)).save(out, "PNG")
    return out.getvalue()


def skin_table(photos: Path) -> list[str]:
    """Markdown rows: each photo's skin tone as shot and relit, and what was read from it."""
    steps = list(catalog.ids("skin_tone"))
    rows = ["| photo | skin tone | " + " | ".join(RELIGHTS) + " | read from the photo |",
            "|---|---|" + "---|" * len(RELIGHTS) + "---|"]  # fmt: skip
    for path in sorted(p for p in photos.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png")):
        data = path.read_bytes()
        try:
            base = analyze(data)
        except PhotoError as exc:
            rows.append(f"| {path.name} | ({exc.category}) |" + " |" * len(RELIGHTS) + " |")
            continue
        tone = str(base.attributes["skin_tone"].value)
        cells = []
        for gains in RELIGHTS.values():
            relit = str(analyze(relight(data, gains)).attributes["skin_tone"].value)
            diff = steps.index(relit) - steps.index(tone)
            cells.append(f"{relit} ({diff:+d})" if diff else "same")
        rows.append(f"| {path.name} | {tone} | " + " | ".join(cells) + f" | {base.describe('en')} |")
    return rows


def main(argv: list[str] | None = None) -> int:
    args = list(argv if argv is not None else sys.argv[1:])
    if "--skin-table" in args:
        args.remove("--skin-table")
        print("\n".join(skin_table(Path((args or ["../shared/photos"])[0]))))
        return 0
    photos = Path((args or ["../shared/photos"])[0])
    labels = json.loads((photos / "labels.json").read_text(encoding="utf-8"))
    has_people = any(isinstance(v, dict) and v.get("person") for v in labels.values())
    groups: list[str | None] = ["tuned", "held_back"] if has_people else [None]
    results = {g: evaluate(photos, g) for g in groups}
    head = " | ".join(f"{g or 'all'} right/labelled | {g or 'all'} accuracy" for g in groups)
    print(f"| attribute | {head} |\n|---|" + "---|---|" * len(groups))
    for key in LABELLED:
        cells = []
        for g in groups:
            n, t = results[g]["hits"][key], results[g]["totals"][key]
            cells.append(f"{n}/{t} | {100 * n / t:.0f}%" if t else "- | -")
        if any(results[g]["totals"][key] for g in groups):
            print(f"| {key} | " + " | ".join(cells) + " |")
    for name, row in {k: v for g in groups for k, v in results[g]["photos"].items()}.items():
        misses = [f"{k}: {v['got']} (label {v['want']})" for k, v in row.items() if not v["ok"]]
        print(f"{name}: " + ("all right" if not misses else "; ".join(misses)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
