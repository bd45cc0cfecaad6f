"""Settings: the .env.example documents every setting, and bad values get readable errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from bot.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_env_example_lists_every_setting_with_an_explanation() -> None:
    text = (ROOT / ".env.example").read_text(encoding="utf-8")
    lines = text.splitlines()
    listed = {m.group(1).lower() for m in re.finditer(r"^CHIBIFY_([A-Z_]+)=", text, re.M)}
    assert listed == set(Settings.model_fields), "every setting appears in .env.example and nothing else"
    for i, line in enumerate(lines):
        if line.startswith("CHIBIFY_"):
            assert i > 0 and lines[i - 1].startswith("# "), f"{line} needs a one-line explanation above it"


def test_defaults_give_the_embedded_sqlite_database(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no .env here
    s = Settings(data_dir=tmp_path / "d")
    assert s.resolved_database_url == f"sqlite+aiosqlite:///{(tmp_path / 'd' / 'chibify.db').as_posix()}"
    assert s.engine == "chibi"
    assert s.discord_token is None


def test_token_is_secret_and_env_prefix_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CHIBIFY_DISCORD_TOKEN", "abc.def.ghi")
    monkeypatch.setenv("CHIBIFY_LOG_LEVEL", "debug")
    s = Settings()
    assert "abc.def.ghi" not in repr(s)
    assert s.discord_token is not None and s.discord_token.get_secret_value() == "abc.def.ghi"
    assert s.log_level == "DEBUG"


@pytest.mark.parametrize(
    ("name", "value"),
    [("CHIBIFY_ENGINE", "dalle"), ("CHIBIFY_BATCH_MAX", "0"), ("CHIBIFY_LOG_LEVEL", "loud")],
)
def test_bad_values_are_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str, value: str
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        Settings()


def test_diffusion_options_take_plain_json_numbers_and_booleans(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # what docs/diffusion.md shows people writing: numbers and booleans, not quoted strings
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CHIBIFY_DIFFUSION_OPTIONS", '{"steps": 25, "img2img_strength": 0.5, "warmup": false}')
    s = Settings()
    assert s.diffusion_options == {"steps": "25", "img2img_strength": "0.5", "warmup": "false"}
    monkeypatch.setenv("CHIBIFY_DIFFUSION_OPTIONS", '["steps", 25]')
    with pytest.raises(ValidationError):
        Settings()
