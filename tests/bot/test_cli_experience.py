"""The console side of issue 14: engine errors name the setting that starts the engine, `selfie --face N`
draws the face asked for, and `export --format pngtuber` writes the PNGTuber set."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main
from tests.bot.test_cli import run


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in ("CHIBIFY_DATABASE_URL", "CHIBIFY_ENGINE", "CHIBIFY_DISCORD_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CHIBIFY_DATA_DIR", str(tmp_path / "data"))
    assert main(["db", "upgrade"]) == 0
    return tmp_path


PHOTOS = Path(__file__).resolve().parents[3] / "shared" / "photos"


def test_an_engine_that_is_not_running_names_its_setting(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "avatar", "cat girl", "--user", "alice", "--engine", "gan")
    assert code != 0
    line = err.strip()
    assert "gan engine is not running here" in line and "Available: chibi" in line
    assert "CHIBIFY_ENGINE=gan" in line and len(err.strip().splitlines()) == 1
    code, _, err = run(capsys, "avatar", "cat girl", "--user", "alice", "--engine", "diffusion")
    assert code != 0 and "CHIBIFY_ENGINE=diffusion" in err and "CHIBIFY_DIFFUSION_MODEL" in err


@pytest.mark.skipif(not (PHOTOS / "two_people.jpg").exists(), reason="shared photos missing")
def test_selfie_face_option_picks_the_face(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    photo = str(PHOTOS / "two_people.jpg")
    code, out, err = run(capsys, "selfie", photo, "--user", "alice")
    assert code == 0, err
    assert "I found 2 faces and drew face" in out and "--face N" in out
    code, out, err = run(capsys, "selfie", photo, "--user", "alice", "--face", "1")
    assert code == 0, err
    assert "drew face 1" in out
    code, _, err = run(capsys, "selfie", photo, "--user", "alice", "--face", "3")
    assert code != 0 and "2 faces" in err and "1 to 2" in err
    code, _, err = run(capsys, "selfie", photo, "--user", "alice", "--face", "0")
    assert code != 0 and "--face 0 is out of range" in err


def test_export_pngtuber_writes_twenty_frames_and_a_readme(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "avatar", "short brown hair", "--user", "bob", "--json")
    assert code == 0, err
    avatar_id = out.split('"id": "')[1].split('"')[0]
    code, out, err = run(
        capsys,
        "export",
        avatar_id,
        "--user",
        "bob",
        "--format",
        "pngtuber",
        "--size",
        "128",
        "--out",
        "tuber",
    )
    assert code == 0, err
    folder = home / "tuber" / f"{avatar_id}-pngtuber"
    frames = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.png"))
    assert len(frames) == 20 and "happy/happy_talk_blink.png" in frames
    assert "veadotube" in (folder / "README.txt").read_text()
