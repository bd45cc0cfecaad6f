"""``chibify worker`` and ``chibify workers`` refuse what they cannot do with one line and a non-zero exit,
through the real console script (no broker running here: tests/generation/test_broker.py has one)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.settings import Settings
from tests.generation.nats_kit import free_port

CHIBIFY = Path(sys.executable).with_name("chibify")


def chibify(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CHIBIFY_")}
    return subprocess.run(
        [str(CHIBIFY), *args],
        cwd=tmp_path,  # no .env here
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


@pytest.mark.parametrize("command", ["worker", "workers"])
def test_without_a_broker_it_says_how_to_set_one(tmp_path: Path, command: str) -> None:
    result = chibify(tmp_path, command)
    assert result.returncode == 1
    assert one_line(result) == (
        "chibify: no broker is configured. Set CHIBIFY_BROKER_URL to your NATS server (e.g. "
        "nats://gpu-box:4222); see docs/scaling.md."
    )


def test_an_unreachable_broker_is_one_line_without_the_password(tmp_path: Path) -> None:
    url = f"nats://alice:s3cret@127.0.0.1:{free_port()}"
    for command in ("worker", "workers"):
        result = chibify(tmp_path, command, CHIBIFY_BROKER_URL=url)
        assert result.returncode == 1
        line = one_line(result)
        assert line.startswith("chibify: cannot reach the broker at nats://alice:***@127.0.0.1:")
        assert "s3cret" not in result.stderr + result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--engines", "warp"], "chibify: unknown engine 'warp'"),
        (["--engines", ","], "chibify: --engines is empty."),
        (["--engines", "synthetic(fast)"], "must look like key=value"),
        (["--max-batch", "0"], "chibify: --max-batch 0 is out of range. Use 1 to 64."),
        (["--id", "my worker"], "worker id 'my worker' may only use letters, digits"),
    ],
)
def test_bad_worker_arguments_are_refused_before_connecting(
    tmp_path: Path, args: list[str], message: str
) -> None:
    result = chibify(tmp_path, "worker", *args, CHIBIFY_BROKER_URL=f"nats://127.0.0.1:{free_port()}")
    assert result.returncode == 2
    assert message in one_line(result)


@pytest.mark.parametrize(
    ("env", "setting"),
    [
        ({"CHIBIFY_BROKER_URL": "http://alice:s3cret@host"}, "broker_url"),
        ({"CHIBIFY_INSTANCE": "bot one"}, "instance"),
        ({"CHIBIFY_ENGINE": "warp"}, "engine"),
    ],
)
def test_bad_broker_settings_name_the_setting_never_its_value(
    tmp_path: Path, env: dict[str, str], setting: str
) -> None:
    result = chibify(tmp_path, "workers", **env)
    assert result.returncode == 2
    line = one_line(result)
    assert line.startswith("chibify: bad setting:") and setting in line
    assert "s3cret" not in line


def test_the_broker_settings_make_a_config_and_none_means_embedded() -> None:
    assert Settings(_env_file=None).broker() is None  # type: ignore[call-arg]
    config = Settings(  # type: ignore[call-arg]
        _env_file=None, broker_url="tls://a:4222,tls://b:4222", broker_ack_wait_s=5, instance="shard-2"
    ).broker()
    assert config is not None and config.servers == ["tls://a:4222", "tls://b:4222"]
    assert config.ack_wait_s == 5 and config.tls_context() is not None
