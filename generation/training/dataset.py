"""Datasets for training: chibi-engine renders with captions and specs, or a folder of the user's own art.

A dataset is a folder in the layout Hugging Face ``imagefolder`` reads::

    DIR/dataset.json        what built it (source, count, size, seed, format version)
    DIR/metadata.jsonl      one line per image: file_name, split, text, caption_en, caption_zh, spec
    DIR/images/000000.png   RGB PNGs, all SIZE x SIZE

``text`` is what a model is trained on: for renders, exactly the prompt the diffusion engine builds from the
spec at generation time (:func:`generation.diffusion.prompting.build_prompt`), so training and use agree.
Building is deterministic: the same arguments give the same files. About 5% of the images form the held-out
``test`` split (chosen by a hash, so a bigger dataset keeps the smaller one's split).
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from generation import catalog
from generation.diffusion.prompting import build_prompt
from generation.spec import AvatarSpec

__all__ = [
    "FORMAT_VERSION",
    "DatasetError",
    "Record",
    "build_from_folder",
    "build_renders",
    "caption_zh",
    "load_split",
    "load_train",
    "random_training_spec",
]

FORMAT_VERSION = 1
TEST_PERCENT = 5
MIN_SIZE, MAX_SIZE = 32, 1024
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
TRAIN_STYLE = "chibi"  # the style preset the engine prepends; a model trained with it is used with it


class DatasetError(ValueError):
    """The dataset cannot be built or read; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class Record:
    file_name: str
    split: str
    text: str
    caption_en: str
    caption_zh: str
    spec: dict[str, Any] | None

    def to_json(self) -> dict[str, Any]:
        return {
            "file_name": self.file_name,
            "split": self.split,
            "text": self.text,
            "caption_en": self.caption_en,
            "caption_zh": self.caption_zh,
            "spec": self.spec,
        }


def _split_of(key: str) -> str:
    digest = hashlib.sha256(key.encode()).digest()
    return "test" if int.from_bytes(digest[:4], "big") % 100 < TEST_PERCENT else "train"


def _check_size(size: int) -> None:
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise DatasetError(f"--size must be between {MIN_SIZE} and {MAX_SIZE} pixels (got {size})")


def _prepare_out(out: Path) -> None:
    if out.exists() and any(out.iterdir()):
        raise DatasetError(f"{out} is not empty: give a new folder (a dataset is never written over another)")
    (out / "images").mkdir(parents=True, exist_ok=True)


def random_training_spec(rng: random.Random) -> AvatarSpec:
    """A spec for training: hair colour, hair style and expression drawn evenly from the whole catalog (the
    seed alone favours a few), 0-2 items that fit together, occasional facial hair; the rest from the seed."""
    items: list[str] = []
    for item in rng.sample(catalog.ids("item"), rng.choice((0, 1, 1, 2, 2))):
        try:
            AvatarSpec(items=[*items, item])
        except ValueError:
            continue
        items.append(item)
    facial = rng.choice(catalog.ids("facial_hair")[1:]) if rng.random() < 0.12 else "none"
    hair_color = catalog.get("color", rng.choice(catalog.ids("color"))).hex
    return AvatarSpec(
        seed=rng.randrange(2**40),
        hair={"style": rng.choice(catalog.ids("hair_style")), "color": hair_color},
        expression=rng.choice(catalog.ids("expression")),
        items=items,
        facial_hair=facial,
    ).resolved()


def caption_zh(spec: AvatarSpec) -> str:
    """A Chinese caption made from the catalog's Chinese names (what a zh-CN user would write)."""
    s = spec.resolved()
    assert s.hair.style and s.hair.color and s.outfit.style and s.outfit.color and s.expression

    def zh(category: str, entry_id: str) -> str:
        return catalog.get(category, entry_id).zh

    def color_zh(hex_value: str) -> str:
        name = catalog.color_name(hex_value)
        entry = catalog.find("color", name)
        return entry.zh if entry else name

    parts = [
        "Q版头像",
        f"{color_zh(s.hair.color)}{zh('hair_style', s.hair.style)}",
        zh("expression", s.expression),
    ]
    if s.facial_hair and s.facial_hair != "none":
        parts.append(zh("facial_hair", s.facial_hair))
    parts += [zh("item", i) for i in s.items]
    parts.append(f"{color_zh(s.outfit.color)}{zh('outfit', s.outfit.style)}")
    return "，".join(parts)


def _render_one(args: tuple[int, int, int]) -> tuple[int, bytes, dict[str, Any]]:
    from generation.chibi.engine import ChibiEngine, describe

    index, seed, size = args
    spec = random_training_spec(random.Random(f"{seed}:{index}"))
    rgba = ChibiEngine().render_rgba(spec, size)
    image = Image.fromarray(rgba).convert("RGB")
    record = Record(
        file_name=f"images/{index:06d}.png",
        split=_split_of(f"render:{seed}:{index}"),
        text=build_prompt(spec, style=TRAIN_STYLE).prompt,
        caption_en=describe(spec),
        caption_zh=caption_zh(spec),
        spec=spec.to_json(),
    )
    from io import BytesIO

    buf = BytesIO()
    image.save(buf, format="PNG", optimize=False)
    return index, buf.getvalue(), record.to_json()


def _write(
    out: Path, manifest: dict[str, Any], rows: Iterator[tuple[bytes, dict[str, Any]]]
) -> dict[str, Any]:
    counts = {"train": 0, "test": 0}
    with (out / "metadata.jsonl").open("w", encoding="utf-8") as meta:
        for png, row in rows:
            (out / row["file_name"]).write_bytes(png)
            meta.write(json.dumps(row, ensure_ascii=False) + "\n")
            counts[row["split"]] += 1
    manifest = {**manifest, "format": FORMAT_VERSION, "splits": counts}
    (out / "dataset.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def build_renders(
    out: Path,
    count: int,
    size: int = 64,
    seed: int = 0,
    workers: int = 1,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Render ``count`` random avatars at ``size`` px into ``out``; returns the manifest."""
    if count < 1:
        raise DatasetError("--count must be at least 1")
    _check_size(size)
    _prepare_out(out)
    jobs = [(i, seed, size) for i in range(count)]

    def rows() -> Iterator[tuple[bytes, dict[str, Any]]]:
        if workers > 1:
            import multiprocessing

            with multiprocessing.get_context("spawn").Pool(workers) as pool:
                for _, png, row in pool.imap(_render_one, jobs, chunksize=64):
                    yield png, row
                    if progress:
                        progress(1)
        else:
            for job in jobs:
                _, png, row = _render_one(job)
                yield png, row
                if progress:
                    progress(1)

    return _write(out, {"source": "chibi", "count": count, "size": size, "seed": seed}, rows())


def _square(image: Image.Image, size: int) -> Image.Image:
    w, h = image.size
    side = min(w, h)
    box = ((w - side) // 2, (h - side) // 2, (w - side) // 2 + side, (h - side) // 2 + side)
    return image.crop(box).resize((size, size), Image.Resampling.LANCZOS)


def build_from_folder(
    source: Path, out: Path, size: int = 64, progress: Callable[[int], None] | None = None
) -> dict[str, Any]:
    """Turn a folder of the user's own images, each with a caption in a sidecar ``.txt`` of the same name
    (``cat.png`` + ``cat.txt``), into a dataset: centre-cropped square, resized, same layout as renders.
    Images without a caption, or that cannot be read, are skipped and listed in the manifest."""
    _check_size(size)
    if not source.is_dir():
        raise DatasetError(f"{source} is not a folder")
    images = sorted(p for p in source.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not images:
        raise DatasetError(f"{source} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    skipped: list[str] = []
    usable: list[tuple[Path, str]] = []
    for path in images:
        caption_file = path.with_suffix(".txt")
        caption = caption_file.read_text(encoding="utf-8").strip() if caption_file.is_file() else ""
        if not caption:
            skipped.append(f"{path.relative_to(source)}: no caption (.txt beside it)")
            continue
        usable.append((path, " ".join(caption.split())))
    if not usable:
        raise DatasetError(
            f"none of the {len(images)} images in {source} has a caption in a .txt file beside it"
        )
    _prepare_out(out)

    def rows() -> Iterator[tuple[bytes, dict[str, Any]]]:
        from io import BytesIO

        index = 0
        for path, caption in usable:
            name = str(path.relative_to(source))
            try:
                with Image.open(path) as img:
                    img.draft("RGB", (size * 2, size * 2))
                    rgb = _square(img.convert("RGB"), size)
            except (UnidentifiedImageError, OSError, ValueError) as exc:
                skipped.append(f"{name}: cannot be read ({exc.__class__.__name__})")
                continue
            buf = BytesIO()
            rgb.save(buf, format="PNG")
            record = Record(
                file_name=f"images/{index:06d}.png",
                split=_split_of(f"folder:{name}"),
                text=caption,
                caption_en=caption,
                caption_zh="",
                spec=None,
            )
            index += 1
            if progress:
                progress(1)
            yield buf.getvalue(), record.to_json()

    manifest = _write(out, {"source": "folder", "count": len(usable), "size": size, "seed": None}, rows())
    manifest["skipped"] = skipped
    (out / "dataset.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / "dataset.json"
    if not path.is_file():
        raise DatasetError(
            f"{folder} is not a Chibify dataset (no dataset.json): build one with `chibify dataset build`"
        )
    manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    if manifest.get("format") != FORMAT_VERSION:
        raise DatasetError(
            f"{folder}: dataset format {manifest.get('format')} is not {FORMAT_VERSION}; rebuild it"
        )
    return manifest


def load_split(folder: Path, split: str, limit: int | None = None) -> tuple[np.ndarray, list[Record]]:
    """All images of one split as a uint8 array (N, S, S, 3) plus their records. The array is cached beside
    the metadata (``cache_<split>.npy``) so a resumed run starts in seconds."""
    manifest = read_manifest(folder)
    records = []
    with (folder / "metadata.jsonl").open(encoding="utf-8") as meta:
        for line in meta:
            row = json.loads(line)
            if row["split"] == split:
                records.append(Record(**row))
    if limit is not None:
        records = records[:limit]
    if not records:
        size = int(manifest["size"])
        return np.zeros((0, size, size, 3), dtype=np.uint8), []
    cache = folder / f"cache_{split}.npy"
    if cache.is_file() and limit is None:
        images = np.load(cache)
        if len(images) == len(records):
            return images, records
    images = np.stack([np.asarray(Image.open(folder / r.file_name).convert("RGB")) for r in records])
    if limit is None:
        np.save(cache, images)
    return images, records


def load_train(folder: Path) -> tuple[np.ndarray, list[Record]]:
    """The train split, refusing an empty one (a trainer cannot start from nothing)."""
    images, records = load_split(folder, "train")
    if not records:
        raise DatasetError(f"{folder} has no training images: build it with a larger --count")
    return images, records
