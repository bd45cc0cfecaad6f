"""What the generation layer says (failure reasons, photo problems, spec and edit errors, waiting notes)
reaches a Chinese reader in Chinese, and an English reader unchanged. The texts come from the real code
paths, so a reworded reason that the table no longer covers fails here."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image

from bot.messages import NOTES_ZH, note
from generation import service
from generation.broker import agent
from generation.edits import apply_edit
from generation.face.decode import PhotoError, decode_photo
from generation.spec import AvatarSpec, SpecError

PHOTOS = Path(__file__).resolve().parents[2].parent / "shared" / "photos"
LATIN_WORD = re.compile(r"[A-Za-z]{4,}")


def chinese(text: str) -> bool:
    return bool(re.search(r"[\u4e00-\u9fff]", text))


def assert_translated(text: str) -> None:
    zh = note(text, "zh")
    assert chinese(zh), f"no Chinese for {text!r}"
    shown = re.sub(r"「[^」]*」", "", zh)  # the user's own words are quoted as they were
    kept = ("JPEG", "WebP", "rrggbb", "diffusion")  # formats, codes and engine names
    leftovers = [w for w in LATIN_WORD.findall(shown) if w not in kept]
    assert not leftovers, f"{text!r} -> {zh!r} keeps English words {leftovers}"
    assert note(text, "en") == text


@pytest.mark.parametrize(
    "reason",
    [
        service.TOOK_TOO_LONG,
        service.SAVE_FAILED,
        service.STAYS_QUEUED,
        service.CRASHED,
        service.unserved_message("diffusion"),
        agent.PHOTO_GONE,
        agent.CRASHED,
        "took too long (over 60 s)",
        "the worker process stopped unexpectedly (killed by SIGKILL)",
        "the bot was offline and this request got too old; please ask again",
        "retrying",
    ],
)
def test_service_reasons_have_chinese(reason: str) -> None:
    assert_translated(reason)


def test_the_engine_name_survives_translation() -> None:
    assert "diffusion" in note(service.unserved_message("diffusion"), "zh")


def photo_errors() -> list[str]:
    out = []
    png = io.BytesIO()
    Image.new("RGB", (64, 64), "white").save(png, "PNG")
    cases: list[bytes] = [b"hello, not a picture", png.getvalue()[:60], b"\x00" * (11 * 2**20)]
    for data in cases:
        with pytest.raises(PhotoError) as caught:
            decode_photo(data)
        out.append(str(caught.value))
    from generation.face.analyze import analyze

    with pytest.raises(PhotoError) as caught:
        analyze(png.getvalue())  # a blank picture: no face
    out.append(str(caught.value))
    if (PHOTOS / "obama.jpg").exists():
        with pytest.raises(PhotoError) as caught:
            analyze((PHOTOS / "obama.jpg").read_bytes(), face_index=6)
        out.append(str(caught.value))
    return out


def test_photo_problems_have_chinese() -> None:
    for text in photo_errors():
        assert_translated(text)


def test_spec_and_edit_errors_name_things_in_chinese() -> None:
    spec = AvatarSpec(items=("cat_ears",))
    texts = []
    for kwargs in ({"add": ["banana hat"]}, {"remove": ["halo"]}, {"hair_color": "blurple"}):
        with pytest.raises(SpecError) as caught:
            apply_edit(spec, **kwargs)  # type: ignore[arg-type]
        texts.append(str(caught.value))
    for text in texts:
        assert_translated(text)
    removed = note(texts[1], "zh")
    assert "光环" in removed or "猫耳" in removed, removed  # catalog names, in Chinese


def test_unknown_text_passes_through() -> None:
    assert note("something entirely new happened", "zh") == "something entirely new happened"
    assert all(p.pattern for p, _ in NOTES_ZH)


@dataclass
class FakeHandle:
    message: str
    at: int | None

    def done(self) -> bool:
        return False

    def position(self) -> int | None:
        return self.at

    def eta_s(self) -> float | None:
        return 3.0


def test_progress_shows_why_a_job_waits() -> None:
    from bot.studio import Pending
    from bot.views.results import progress_text

    pending = Pending(handles=[FakeHandle(service.unserved_message("diffusion"), 0)], owner_id=1)  # type: ignore[list-item]
    assert "No worker serves 'diffusion' yet" in progress_text(pending, "en")
    assert "diffusion" in progress_text(pending, "zh") and chinese(progress_text(pending, "zh"))
    plain = Pending(handles=[FakeHandle("", 2)], owner_id=1)  # type: ignore[list-item]
    assert "position 2" in progress_text(plain, "en")
