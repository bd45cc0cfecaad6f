"""`python -m bot` refuses clearly: no token, or a database that is behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_bot(tmp_path: Path, token: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHIBIFY_")}
    env.update(CHIBIFY_DATA_DIR=str(tmp_path), CHIBIFY_DISCORD_TOKEN=token)
    return subprocess.run(
        [sys.executable, "-m", "bot"],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_refuses_without_a_token(tmp_path: Path) -> None:
    done = run_bot(tmp_path, "")
    assert done.returncode == 2
    assert "CHIBIFY_DISCORD_TOKEN" in done.stderr


def test_refuses_a_database_that_is_behind(tmp_path: Path) -> None:
    done = run_bot(tmp_path, "some-token")
    assert done.returncode == 2
    assert "chibify db upgrade" in done.stderr
