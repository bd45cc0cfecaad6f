"""Likeness from a selfie (issue 15): clothes, facial hair, eyes, skin under any light, and the reading in words.

Real photos from ../shared/photos and ../shared/photos/more (never copied into the repository); relit copies
are made here with code. Analyses are cached per module: each costs a fraction of a second.
"""

from __future__ import annotations

import functools
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from generation import catalog
from generation.face.reading import Reading, describe, reading_from_spec

PHOTOS = Path(__file__).resolve().parents[2] / ".." / "shared" / "photos"
MORE = PHOTOS / "more"
needs_more = pytest.mark.skipif(
    not (MORE / "labels.json").is_file(), reason="the shared photos are not at ../shared/photos/more"
)

#: Light colour casts and exposures a phone or a lamp gives (per-channel gains on the RGB values).
RELIGHTS = {
    "warm": (1.1, 1.0, 0.78),
    "cool": (0.85, 0.97, 1.12),
    "dim": (0.6, 0.6, 0.6),
    "bright": (1.2, 1.2, 1.2),
}


@functools.cache
def _labels() -> dict[str, dict]:
    data = json.loads((MORE / "labels.json").read_text(encoding="utf-8"))
    return {k: v for k, v in data.items() if not k.startswith("_") and v.get("faces") == 1}


@functools.cache
def _photo(path: str, light: str = "") -> bytes:
    data = (PHOTOS / path).read_bytes()
    if not light:
        return data
    rgb = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.float32)
    relit = np.clip(rgb * np.array(RELIGHTS[light], dtype=np.float32), 0, 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(relit).save(out, "PNG")
    return out.getvalue()


@functools.cache
def _analysis(path: str, light: str = "") -> object:
    pytest.importorskip("mediapipe", reason="mediapipe 0.10.14 is not installed (see docs/selfie.md)")
    from generation.face import analyze

    return analyze(_photo(path, light))


def _attr(path: str, name: str, light: str = "") -> object:
    return _analysis(path, light).attributes[name].value  # type: ignore[attr-defined]


def _step(tone: object) -> int:
    return list(catalog.ids("skin_tone")).index(str(tone))


# ---------------------------------------------------------------------------------------------- skin tone


@needs_more
@pytest.mark.parametrize(
    "path", ["obama.jpg", "rose_leslie.jpg", "more/matt_damon_1.jpg", "more/angelina_jolie_3.jpg"]
)
@pytest.mark.parametrize("light", sorted(RELIGHTS))
def test_skin_tone_holds_within_one_step_under_relighting(path: str, light: str) -> None:
    base = _step(_attr(path, "skin_tone"))
    relit = _step(_attr(path, "skin_tone", light))
    assert abs(relit - base) <= 1, f"{path} in {light} light: {relit} vs {base} on the SKIN_TONES ladder"


@needs_more
@pytest.mark.parametrize("light", sorted(RELIGHTS))
def test_a_darker_face_is_never_lightened_by_the_light(light: str) -> None:
    assert _attr("obama.jpg", "skin_tone", light) in {"tan", "caramel", "brown", "deep", "ebony"}


@needs_more
def test_warm_light_does_not_turn_a_fair_face_brown() -> None:
    for name in ("matt_damon_5.jpg", "mark_zuckerberg_1.jpg", "scarlett_johansson_1.jpg"):
        tone = _attr(f"more/{name}", "skin_tone", "warm")
        assert _step(tone) <= _step("beige"), f"{name}: {tone}"


# -------------------------------------------------------------------------------------------- facial hair


@needs_more
def test_no_beard_or_moustache_on_clean_shaven_faces() -> None:
    shaven = [n for n, lab in _labels().items() if lab.get("facial_hair") == "none"]
    assert len(shaven) >= 30
    wrong = {
        n: v for n in shaven if (v := _attr(f"more/{n}", "facial_hair")) in ("beard", "moustache", "goatee")
    }
    assert not wrong
    # Biden (clean-shaven, in shadowy light) in the older set too.
    assert _attr("biden_full_body.jpg", "facial_hair") == "none"


@needs_more
def test_beards_and_stubble_are_read_as_such() -> None:
    for n in ("leonardo_dicaprio_1.jpg", "leonardo_dicaprio_3.jpg"):
        assert _attr(f"more/{n}", "facial_hair") == "beard", n
    stubbly = [n for n, lab in _labels().items() if lab.get("facial_hair") == "stubble"]
    read = [n for n in stubbly if _attr(f"more/{n}", "facial_hair") == "stubble"]
    assert len(read) >= len(stubbly) - 2, f"stubble read on {read} of {stubbly}"


# ------------------------------------------------------------------------------------------------ eyes


@needs_more
def test_light_eyes_are_not_drawn_brown() -> None:
    light = [n for n, lab in _labels().items() if lab.get("eye_color") == "light"]
    brown = [n for n in light if _attr(f"more/{n}", "eye_color") == "brown"]
    assert len(brown) <= len(light) // 10, brown


@needs_more
def test_a_dark_eyed_face_keeps_brown_eyes() -> None:
    assert _attr("obama.jpg", "eye_color") == "brown"


# ---------------------------------------------------------------------------------------------- clothes


@needs_more
@pytest.mark.parametrize(
    "name", ["elon_musk_1.jpg", "elon_musk_3.jpg", "leonardo_dicaprio_3.jpg", "leonardo_dicaprio_4.jpg"]
)
def test_a_dark_suit_is_a_dark_suit(name: str) -> None:
    analysis = _analysis(f"more/{name}")
    assert analysis.spec.outfit.style in ("suit", "blazer")  # type: ignore[attr-defined]
    assert analysis.attributes["outfit_color"].value in ("black", "charcoal", "navy")  # type: ignore[attr-defined]
    assert analysis.attributes["outfit_tone"].value == "dark"  # type: ignore[attr-defined]


@needs_more
def test_bare_shoulders_are_a_dress_and_a_tee_is_not_a_suit() -> None:
    assert _analysis("more/angelina_jolie_2.jpg").spec.outfit.style == "dress"  # type: ignore[attr-defined]
    tee = _analysis("more/mark_zuckerberg_2.jpg").spec.outfit.style  # type: ignore[attr-defined]
    assert tee in ("tshirt", "sweater", "hoodie")


@needs_more
def test_the_prompt_still_overrides_the_clothes() -> None:
    from generation.face import chibify_spec

    analysis = _analysis("more/matt_damon_1.jpg")
    assert analysis.spec.outfit.style == "suit"  # type: ignore[attr-defined]
    spec = chibify_spec(analysis, "red hoodie")  # type: ignore[arg-type]
    assert spec.outfit.style == "hoodie"
    assert spec.outfit.color == catalog.get("color", "red").hex
    kept = chibify_spec(analysis, "pink hair")  # type: ignore[arg-type]
    assert kept.outfit == analysis.spec.outfit  # type: ignore[attr-defined]


# ------------------------------------------------------------------------------------------------- hair


@needs_more
def test_grey_hair_is_grey_and_dark_hair_is_not() -> None:
    assert _attr("biden_full_body.jpg", "hair_color") in ("silver", "white")
    for name in ("elon_musk_1.jpg", "mark_zuckerberg_1.jpg", "leonardo_dicaprio_3.jpg"):
        assert _attr(f"more/{name}", "hair_color") not in ("silver", "white", "blonde", "platinum"), name


# ----------------------------------------------------------------------------------- the reading in words


def test_describe_in_english_and_chinese_from_catalog_names() -> None:
    reading = Reading(
        hair_style="curly",
        hair_color="black",
        facial_hair="beard",
        eyes="brown",
        outfit="suit",
        outfit_color="navy",
        hair_grey="temples",
    )
    en = describe(reading, "en")
    assert en == "curly black hair, grey at the temples, beard, brown eyes, navy suit and tie"
    zh = describe(reading, "zh")
    assert zh.startswith("黑色卷发") and "络腮胡" in zh and "藏青色西装" in zh and "，" in zh
    assert describe(Reading(hair_style="bald", hair_color="black", facial_hair="none"), "en") == "bald"
    assert describe(Reading(), "en") == ""


@needs_more
def test_the_analysis_carries_its_reading_and_the_spec_tells_the_same() -> None:
    analysis = _analysis("more/leonardo_dicaprio_3.jpg")
    words = analysis.describe("en")  # type: ignore[attr-defined]
    assert "beard" in words and "suit" in words
    assert analysis.to_json()["read"] == words  # type: ignore[attr-defined]
    assert describe(reading_from_spec(analysis.spec), "en") == words  # type: ignore[attr-defined]


# ------------------------------------------------------------------------------------ process boundaries


def test_validating_a_photo_does_not_import_opencv_or_mediapipe() -> None:
    code = (
        "import io, sys\n"
        "from PIL import Image\n"
        "from generation.face.decode import decode_photo\n"
        "from generation.face.reading import describe, Reading\n"
        "buf = io.BytesIO(); Image.new('RGB', (64, 48), (200, 150, 120)).save(buf, 'JPEG')\n"
        "assert decode_photo(buf.getvalue()).size == (64, 48)\n"
        "describe(Reading(hair_style='short'), 'en')\n"
        "bad = sorted(m for m in ('cv2', 'mediapipe', 'torch') if m in sys.modules)\n"
        "print('LOADED', bad)\n"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    assert "LOADED []" in out.stdout, out.stdout + out.stderr


@needs_more
def test_the_worker_reads_a_selfie_once_and_the_engine_draws_that_spec(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("mediapipe")
    from generation.engines import ChibiAdapter, prepare_selfie, selfie_prepared
    from generation.jobs import GenerationRequest
    from generation.spec import AvatarSpec

    request = GenerationRequest(
        user_key="console:test",
        spec=AvatarSpec(seed=5).to_json(),
        kind="selfie",
        size=128,
        init_image=_photo("more/leonardo_dicaprio_4.jpg"),
        prompt="add cat ears",
    )
    prepared = prepare_selfie(request)
    assert selfie_prepared(prepared) and prepare_selfie(prepared) is prepared
    spec = AvatarSpec.from_json(prepared.spec)
    assert (
        "cat_ears" in spec.items and spec.outfit.style in ("suit", "blazer") and spec.facial_hair == "beard"
    )
    assert prepared.meta("face_count") == "1" and prepared.meta("face_used") == "1"

    def no_second_analysis(*_: object, **__: object) -> object:
        raise AssertionError("the engine analysed the photo again")

    monkeypatch.setattr(ChibiAdapter, "selfie", staticmethod(no_second_analysis))
    [result] = ChibiAdapter().run_batch([prepared], lambda *_: None)
    assert not isinstance(result, BaseException), result
    assert AvatarSpec.from_json(result.spec) == spec
    assert (result.face_count, result.face_used) == (1, 1)


@needs_more
def test_the_worker_prepares_selfies_only_for_engines_that_draw_a_spec() -> None:
    pytest.importorskip("mediapipe")
    from generation.engines import ChibiAdapter, selfie_prepared
    from generation.jobs import GenerationRequest
    from generation.worker import _Child

    good = GenerationRequest(
        user_key="console:a", spec={}, kind="selfie", size=64, init_image=_photo("more/matt_damon_1.jpg")
    )
    bad = GenerationRequest(user_key="console:b", spec={}, kind="selfie", size=64, init_image=b"not a photo")
    outcomes: dict = {}
    ready = _Child._read_selfies(ChibiAdapter(), [(1, good), (2, bad)], outcomes)
    assert [j for j, _ in ready] == [1] and selfie_prepared(ready[0][1])
    assert outcomes[2].error  # the unreadable photo fails its own job, with the reason
    other = _Child._read_selfies(object(), [(2, bad)], {})  # an engine that reads photos itself
    assert other == [(2, bad)]


def _shaved(path: str) -> bytes:
    """The photo with the hair above the eyes painted over in the person's own cheek colour, lightly shaded:
    a bald head of the same person, in the same light."""
    from generation.face import decode_photo
    from generation.face.masks import CHEEKS

    analysis = _analysis(path)
    geometry = analysis.geometry  # type: ignore[attr-defined]
    rgb = decode_photo(_photo(path)).rgb.copy()
    pts = geometry.landmarks
    h, w = rgb.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    cx, fw = (pts[234, 0] + pts[454, 0]) / 2, pts[454, 0] - pts[234, 0]
    top, eye = pts[10, 1], (pts[159, 1] + pts[386, 1]) / 2
    skin = np.median(np.stack([rgb[int(pts[i, 1]), int(pts[i, 0])] for i in CHEEKS]), axis=0)
    dome = ((xx - cx) / (0.62 * fw)) ** 2 + ((yy - eye) / (1.05 * (eye - top) + 0.35 * fw)) ** 2 <= 1
    head = (dome | ((geometry.person_mask > 0.5) & (np.abs(xx - cx) < 0.75 * fw))) & (yy < eye)
    shade = 1 - 0.15 * np.clip((eye - yy) / fw, 0, 1)
    rgb[head] = np.clip(skin[None, :] * shade[head][:, None], 0, 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, "PNG")
    return out.getvalue()


@needs_more
@pytest.mark.parametrize("path", ["more/matt_damon_4.jpg", "obama.jpg"])
def test_a_bald_head_is_bald_and_gets_no_hair_colour_in_words(path: str) -> None:
    from generation.face import analyze

    analysis = analyze(_shaved(path))
    assert analysis.spec.hair.style == "bald"
    assert analysis.describe("en").startswith("bald")
    assert analysis.reading.hair_color is None and analysis.reading.hair_grey is None
    # ... while the same person with hair keeps it
    assert _analysis(path).spec.hair.style not in ("bald", None)  # type: ignore[attr-defined]
