"""CHIBIFY_METRICS_PORT starts the Prometheus endpoint: GET /metrics serves the generation service's metrics
while the bot runs, stops with it, and a port already in use is one line and exit 2."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.errors import Unavailable
from bot.metrics_server import MetricsServer, serve_metrics
from generation.metrics import ServiceMetrics
from storage import migrate
from tests.bot.conftest import result_message
from tests.discord.emulator import DiscordEmulator

module_loop = pytest.mark.asyncio(loop_scope="module")  # the emulator fixture lives in the module's loop

ROOT = Path(__file__).resolve().parents[2]
SERVICE_METRICS = (
    "chibify_generation_queue_length",
    "chibify_generation_running_jobs",
    "chibify_generation_jobs_submitted",
    "chibify_generation_jobs_finished",
    "chibify_generation_batch_size",
)


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port something else is listening on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def families(text: str) -> dict[str, float]:
    """Metric family name -> the sum of its plain samples (no _bucket/_created lines)."""
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        samples = [s for s in family.samples if s.name in (family.name, family.name + "_total")]
        found[family.name] = sum(s.value for s in samples)
    return found


async def get(url: str) -> tuple[int, str, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, response.headers["Content-Type"], await response.text()


@module_loop
async def test_serves_the_service_registry_then_stops() -> None:
    metrics = ServiceMetrics()
    metrics.submitted.labels(kind="prompt").inc(3)
    async with serve_metrics("127.0.0.1", 0) as server:
        server.add(metrics.registry)
        assert server.port != 0
        status, content_type, text = await get(server.url)
        assert status == 200 and content_type.startswith("text/plain; version=")
        found = families(text)
        for name in SERVICE_METRICS:
            assert name in found, name
        assert found["chibify_generation_jobs_submitted"] == 3.0
        assert any(name.startswith("process_") for name in found)  # the default registry: process, python
        metrics.queue_length.set(7)
        assert families((await get(server.url))[2])["chibify_generation_queue_length"] == 7.0
        status, _, _ = await get(server.url.replace("/metrics", "/other"))
        assert status == 404
    with pytest.raises(aiohttp.ClientConnectionError):
        await get(server.url)


@module_loop
async def test_metrics_off_listens_nowhere() -> None:
    async with serve_metrics("127.0.0.1", None) as server:
        server.add(ServiceMetrics().registry)  # callers add registries either way
        assert server._runner is None


@module_loop
async def test_a_port_in_use_is_one_clear_error(taken_port: int) -> None:
    with pytest.raises(Unavailable) as refused:
        await MetricsServer("127.0.0.1", taken_port).start()
    message = str(refused.value)
    assert f"127.0.0.1:{taken_port} is already in use" in message and "CHIBIFY_METRICS_PORT" in message
    assert "\n" not in message


def bot_env(tmp_path: Path, **values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHIBIFY_")}
    env.update(PYTHONPATH=str(ROOT), CHIBIFY_DATA_DIR=str(tmp_path / "data"), CHIBIFY_BATCH_WINDOW_MS="10")
    env.update(values)
    return env


def test_python_m_bot_with_the_metrics_port_taken_exits_2_in_one_line(
    tmp_path: Path, taken_port: int
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bot"],
        cwd=tmp_path,
        env=bot_env(tmp_path, CHIBIFY_DISCORD_TOKEN="some-token", CHIBIFY_METRICS_PORT=str(taken_port)),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"chibify bot: the metrics port 127.0.0.1:{taken_port} is already in use. "
        "Set CHIBIFY_METRICS_PORT to a free port, or leave it empty to turn metrics off."
    ]


@module_loop
async def test_the_real_bot_process_serves_metrics_until_sigterm(
    emulator: DiscordEmulator, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    await migrate.upgrade(f"sqlite+aiosqlite:///{(data / 'chibify.db').as_posix()}")
    port = free_port()
    env = bot_env(
        tmp_path,
        CHIBIFY_DISCORD_TOKEN=emulator.token,
        CHIBIFY_METRICS_PORT=str(port),
        **emulator.process_env(),
    )
    with (tmp_path / "bot.log").open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.discord.launch", "bot", cwd=tmp_path, env=env, stdout=log, stderr=log
        )
        try:
            await emulator.gateway.wait_for("ready", within=60.0)
            handle = await emulator.slash(emulator.alice, "avatar", {"prompt": "cat ears"})
            await result_message(handle, within=60.0)
            status, _, text = await get(f"http://127.0.0.1:{port}/metrics")
            assert status == 200
            found = families(text)
            assert found["chibify_generation_jobs_submitted"] >= 1.0  # the live service's registry
            assert found["chibify_generation_jobs_finished"] >= 1.0
            process.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(process.wait(), 60.0) == 0
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    with pytest.raises(aiohttp.ClientConnectionError):
        await get(f"http://127.0.0.1:{port}/metrics")
