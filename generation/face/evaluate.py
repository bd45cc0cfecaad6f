"""Accuracy of the analysis against hand labels (``../shared/photos/labels.json``).

    .venv/bin/python -m generation.face.evaluate [../shared/photos]

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

__all__ = ["LABELLED", "SKIN_CLASS", "coarse", "evaluate"]

#: The attributes labels.json gives for each face.
LABELLED = ("skin_tone", "hair_color", "hair_length", "curly", "facial_hair", "glasses", "smiling")

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
    return {
        "skin_tone": SKIN_CLASS.get(str(attrs["skin_tone"].value)),
        "hair_color": HAIR_COLOR_CLASS.get(str(attrs["hair_color"].value)),
        "hair_length": "short" if length in ("bald", "buzz") else length,
        "curly": attrs["curly"].value,
        "facial_hair": "beard" if facial in ("moustache", "goatee") else facial,
        "glasses": attrs["glasses"].value,
        "smiling": attrs["smiling"].value,
    }


def evaluate(photos: Path) -> dict[str, Any]:
    """Per-attribute hits and totals over every labelled face, plus each photo's result."""
    labels = json.loads((photos / "labels.json").read_text(encoding="utf-8"))
    hits = dict.fromkeys(LABELLED, 0)
    totals = dict.fromkeys(LABELLED, 0)
    per_photo: dict[str, Any] = {}
    for name, label in sorted(labels.items()):
        if name.startswith("_") or not isinstance(label.get("faces"), int) or label["faces"] != 1:
            continue
        try:
            got = coarse(analyze((photos / name).read_bytes()).attributes)
        except PhotoError as exc:
            got = {"error": exc.category}
        row = {}
        for key in LABELLED:
            want = label.get(key)
            if want is None:
                continue
            totals[key] += 1
            ok = got.get(key) == want
            hits[key] += ok
            row[key] = {"want": want, "got": got.get(key), "ok": ok}
        per_photo[name] = row
    return {"hits": hits, "totals": totals, "photos": per_photo}


def main(argv: list[str] | None = None) -> int:
    photos = Path((argv or sys.argv[1:] or ["../shared/photos"])[0])
    result = evaluate(photos)
    print("| attribute | right | labelled | accuracy |\n|---|---|---|---|")
    for key in LABELLED:
        n, t = result["hits"][key], result["totals"][key]
        print(f"| {key} | {n} | {t} | {100 * n / max(t, 1):.0f}% |")
    for name, row in result["photos"].items():
        misses = [f"{k}: {v['got']} (label {v['want']})" for k, v in row.items() if not v["ok"]]
        print(f"{name}: " + ("all right" if not misses else "; ".join(misses)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
