"""The `chibify` console end to end: real SQLite file, real worker process, real chibi engine."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bot.cli import main
from generation.spec import AvatarSpec


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in ("CHIBIFY_DATABASE_URL", "CHIBIFY_ENGINE", "CHIBIFY_DISCORD_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CHIBIFY_DATA_DIR", str(tmp_path / "data"))
    assert main(["db", "upgrade"]) == 0
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def json_lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def test_avatar_in_chinese_gives_the_parts_asked_for(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys, "avatar", "粉色双马尾猫耳少女，戴眼镜，微笑", "--user", "alice", "--json", "--seed", "11"
    )
    assert code == 0, err
    [made] = json_lines(out)
    spec = AvatarSpec.from_json(made["spec"])
    assert spec.hair.style == "twin_tails" and spec.hair.color == "#f49ac1"
    assert {"cat_ears", "round_glasses"} <= set(spec.items)
    assert spec.expression == "smile"
    assert made["owner"] == "console:alice" and made["kind"] == "prompt" and made["seed"] == 11
    image = Image.open(made["image"])
    assert image.size == (512, 512) == (made["width"], made["height"])
    assert "粉色双马尾" in image.text["parameters"]  # type: ignore[attr-defined]


def test_create_edit_vary_history_show_export_forget(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys,
        "avatar",
        "pink twin tails cat girl, glasses, smile",
        "--user",
        "bob",
        "--json",
        "--count",
        "2",
    )
    assert code == 0, err
    first, second = json_lines(out)
    assert first["id"] != second["id"] and second["seed"] == first["seed"] + 1

    code, out, err = run(
        capsys, "edit", first["id"], "--user", "bob", "--add", "crown", "--remove", "glasses",
        "--expression", "wink", "--hair-color", "#88ccff", "--json",
    )  # fmt: skip
    assert code == 0, err
    [edited] = json_lines(out)
    old, new = AvatarSpec.from_json(first["spec"]), AvatarSpec.from_json(edited["spec"])
    assert edited["kind"] == "edit" and edited["parent"] == first["id"] and new.seed == old.seed
    assert "crown" in new.items and "round_glasses" not in new.items
    assert new.expression == "wink" and new.hair.color == "#88ccff"
    assert new.replace(items=old.items, expression=old.expression, hair={"color": old.hair.color}) == old

    code, out, err = run(capsys, "vary", edited["id"], "--user", "bob", "--json")
    assert code == 0, err
    [varied] = json_lines(out)
    assert varied["kind"] == "variation" and varied["parent"] == edited["id"]
    assert AvatarSpec.from_json(varied["spec"]).replace(seed=new.seed) == new

    code, out, _ = run(capsys, "history", "--user", "bob", "--json")
    page = json.loads(out)
    assert page["total"] == 4
    assert [a["id"] for a in page["avatars"]] == [varied["id"], edited["id"], second["id"], first["id"]]

    code, out, _ = run(capsys, "show", varied["id"], "--user", "bob", "--json")
    assert json.loads(out)["lineage"] == [first["id"], edited["id"], varied["id"]]

    code, out, err = run(
        capsys, "export", edited["id"], "--user", "bob", "--format", "circle", "--size", "128", "--out", "ex"
    )
    assert code == 0, err
    circle = Image.open(home / "ex" / f"{edited['id']}-circle.png")
    assert circle.size == (128, 128) and circle.getpixel((0, 0))[3] == 0  # type: ignore[index]

    code, out, err = run(
        capsys, "export", edited["id"], "--user", "bob", "--format", "stickers", "--out", "st"
    )
    assert code == 0, err
    stickers = sorted((home / "st" / edited["id"] / "stickers").glob("*.png"))
    assert len(stickers) == 8
    assert all(Image.open(p).size == (320, 320) and p.stat().st_size < 512 * 1024 for p in stickers)

    # Another user sees none of it, by id or by listing.
    code, _, err = run(capsys, "show", first["id"], "--user", "mallory")
    assert code != 0 and "no avatar" in err
    code, out, _ = run(capsys, "history", "--user", "mallory", "--json")
    assert json.loads(out)["total"] == 0

    code, out, _ = run(capsys, "forget", "--user", "bob", "--yes")
    assert code == 0 and "4 avatars" in out
    code, out, _ = run(capsys, "history", "--user", "bob", "--json")
    assert json.loads(out)["total"] == 0
    blobs = [p for p in (home / "data" / "blobs").rglob("*") if p.is_file()]
    assert blobs == []


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["export", "abc", "--format", "png", "--size", "4096"], "64 to 2048"),
        (["show", "does-not-exist", "--user", "nobody"], "no avatars yet"),
        (["avatar", "x" * 600], "limit is 500"),
        (["avatar", "nsfw cat girl"], "doesn't make"),
        (["catalog", "spaceships"], "unknown category"),
    ],
)
def test_errors_are_one_line_on_stderr_with_what_to_do(
    home: Path, capsys: pytest.CaptureFixture[str], argv: list[str], expected: str
) -> None:
    code, out, err = run(capsys, *argv)
    assert code != 0
    assert out == ""
    assert err.startswith("chibify: ") and err.count("\n") == 1
    assert expected.lower() in err.lower()


def test_edit_with_an_unknown_item_suggests_close_matches(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "avatar", "short hair", "--user", "cy", "--json")
    assert code == 0, err
    [made] = json_lines(out)
    code, _, err = run(capsys, "edit", made["id"], "--user", "cy", "--add", "cat ear hat")
    assert code == 2 and "did you mean" in err and "cat ears" in err
    code, _, err = run(capsys, "edit", made["id"], "--user", "cy")
    assert code == 2 and "nothing to change" in err


def test_database_behind_is_refused_with_the_command_to_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CHIBIFY_DATA_DIR", str(tmp_path / "fresh"))
    code, _, err = run(capsys, "history", "--user", "alice")
    assert code != 0 and "chibify db upgrade" in err


def test_catalog_json_lists_every_category_with_both_languages(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "catalog", "--json")
    data = json.loads(out)
    assert code == 0
    assert len(data["item"]) >= 30 and len(data["hair_style"]) >= 14 and len(data["expression"]) >= 12
    assert len(data["skin_tone"]) == 10
    assert all(e["en"] and e["zh"] for cat in ("item", "hair_style") for e in data[cat])


def test_empty_prompt_gives_a_random_avatar(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "avatar", "", "--user", "dee", "--json")
    assert code == 0, err
    [made] = json_lines(out)
    data = Path(made["image"]).read_bytes()
    assert Image.open(io.BytesIO(data)).format == "PNG"


PHOTOS = Path(__file__).resolve().parents[2].parent / "shared" / "photos"


@pytest.mark.skipif(not PHOTOS.is_dir(), reason="../shared/photos is not beside the repository")
def test_selfie_makes_an_avatar_and_keeps_no_trace_of_the_photo(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photo = PHOTOS / "obama.jpg"
    code, out, err = run(capsys, "selfie", str(photo), "--user", "eve", "--prompt", "add cat ears", "--json")
    assert code == 0, err
    [made] = json_lines(out)
    spec = AvatarSpec.from_json(made["spec"])
    assert made["kind"] == "selfie" and "cat_ears" in spec.items
    assert spec.skin_tone in {"caramel", "brown", "deep", "ebony"}  # never pulled lighter
    # The photo is nowhere under the data directory: not as a file, not inside the database.
    data = photo.read_bytes()
    probes = [data[i : i + 64] for i in (1000, len(data) // 2, len(data) - 200)]
    for path in (home / "data").rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            assert not any(p in content for p in probes), f"photo bytes found in {path}"


def _truncated_jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (400, 300), (200, 150, 120)).save(buf, "JPEG")
    return buf.getvalue()[:600]


@pytest.mark.parametrize(
    ("content", "expected"),
    [(b"not a picture at all", "not a picture"), (_truncated_jpeg(), "damaged")],
)
def test_selfie_bad_files_get_a_clear_message(
    home: Path, capsys: pytest.CaptureFixture[str], content: bytes, expected: str
) -> None:
    bad = home / "bad.png"
    bad.write_bytes(content)
    code, out, err = run(capsys, "selfie", str(bad), "--user", "eve")
    assert code == 2 and out == ""
    assert expected in err.lower()


def test_diffusion_engine_serves_avatar_and_edit_from_a_local_model_folder(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """CHIBIFY_ENGINE=diffusion with a model folder: the same commands, the same service, no download."""
    from tests.generation.tiny_pipes import save_tiny_pipeline

    model = save_tiny_pipeline(home / "tiny-sd15")
    monkeypatch.setenv("CHIBIFY_ENGINE", "diffusion")
    monkeypatch.setenv("CHIBIFY_DIFFUSION_MODEL", str(model))
    monkeypatch.setenv("CHIBIFY_DIFFUSION_OPTIONS", '{"steps": "2", "resolution": "64", "warmup": "false"}')
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code, out, err = run(capsys, "avatar", "pink hair, cat ears", "--user", "dora", "--json", "--seed", "3")
    assert code == 0, err
    [made] = json_lines(out)
    assert made["engine"] == "diffusion" and Path(made["image"]).is_file()
    assert "cat_ears" in made["spec"]["items"] and made["spec"]["hair"]["color"] == "#f49ac1"
    code, out, err = run(capsys, "edit", made["id"], "--user", "dora", "--add", "crown", "--json")
    assert code == 0, err
    [edited] = json_lines(out)
    assert edited["engine"] == "diffusion" and edited["parent"] == made["id"] and edited["seed"] == 3
    # the edit repainted the crown's region of the parent's own picture; elsewhere it is the parent's pixels
    from generation.chibi.engine import ChibiEngine

    size = 512
    old, new = (AvatarSpec.from_json(x["spec"]) for x in (made, edited))
    region = ChibiEngine().region_for_change(old, new, size)
    grown = np.zeros_like(region)
    ys, xs = np.nonzero(region)
    grown[max(0, ys.min() - 40) : ys.max() + 40, max(0, xs.min() - 40) : xs.max() + 40] = True
    parent_px, child_px = (
        np.asarray(Image.open(x["image"]).convert("RGB"), dtype=np.int16) for x in (made, edited)
    )
    render_px = ChibiEngine().render_rgba(old, size)[..., :3].astype(np.int16)
    outside = ~grown
    kept, redrawn = np.abs(child_px - parent_px)[outside].mean(), np.abs(child_px - render_px)[outside].mean()
    assert kept < 8 and redrawn > 30, (kept, redrawn)  # the parent's own picture, not a new render
