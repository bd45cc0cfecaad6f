"""``chibify web`` and ``python -m bot`` with ``CHIBIFY_WEB_PORT``: real processes, real signals, one-line
refusals, and no torch in the web process."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from storage import migrate
from tests.discord.emulator import DiscordEmulator

session_loop = pytest.mark.asyncio(loop_scope="session")

ROOT = Path(__file__).resolve().parents[2]
GOOD_SECRET = "s" * 40


def env_for(tmp_path: Path, **values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHIBIFY_")}
    env.update(PYTHONPATH=str(ROOT), CHIBIFY_DATA_DIR=str(tmp_path / "data"), CHIBIFY_BATCH_WINDOW_MS="10")
    env.update(values)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def chibify(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        cwd=tmp_path,
        env=env_for(tmp_path, **env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "env", "says"),
    [
        (("web",), {}, "Discord sign-in needs CHIBIFY_DISCORD_CLIENT_ID, CHIBIFY_DISCORD_CLIENT_SECRET"),
        (
            ("web",),
            {
                "CHIBIFY_DISCORD_CLIENT_ID": "1",
                "CHIBIFY_DISCORD_CLIENT_SECRET": "x",
                "CHIBIFY_WEB_SECRET": "short",
            },
            "CHIBIFY_WEB_SECRET is 5 characters; use at least 32",
        ),
        (("web", "--local-user", "alice", "--host", "0.0.0.0"), {}, "listens on 127.0.0.1 only"),
        (("web", "--local-user", " alice"), {}, "starts or ends with a space"),
        (("web", "--port", "70000"), {}, "port 70000 is out of range"),
        (
            ("web",),
            {
                "CHIBIFY_DISCORD_CLIENT_ID": "1",
                "CHIBIFY_DISCORD_CLIENT_SECRET": "x",
                "CHIBIFY_WEB_SECRET": GOOD_SECRET,
                "CHIBIFY_WEB_BASE_URL": "https://chibify.example/app",
            },
            "has a path",
        ),
    ],
)
def test_chibify_web_refuses_in_one_line(
    tmp_path: Path, args: tuple[str, ...], env: dict[str, str], says: str
) -> None:
    done = chibify(tmp_path, *args, **env)
    assert done.returncode != 0
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and says in lines[0], done.stderr
    assert not (tmp_path / "data").exists()  # refused before anything was opened or made


def test_the_web_imports_no_torch() -> None:
    code = (
        "import sys, bot.web.app, bot.web.routes, bot.web.process, bot.app, bot.commands; "
        "bad = [m for m in ('torch', 'mediapipe', 'diffusers') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


async def wait_for_http(url: str, within: float) -> int:
    """Poll ``url`` until it answers (a new process binding its port), with a deadline."""
    deadline = time.monotonic() + within
    async with aiohttp.ClientSession() as http:
        while True:
            try:
                async with http.get(url) as resp:
                    return resp.status
            except aiohttp.ClientConnectionError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.05)


@session_loop
async def test_chibify_web_local_user_serves_until_sigterm(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    await migrate.upgrade(f"sqlite+aiosqlite:///{(tmp_path / 'data' / 'chibify.db').as_posix()}")
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", "web", "--local-user", "alice", "--port", str(port),
        cwd=tmp_path, env=env_for(tmp_path), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
        assert f"serving http://127.0.0.1:{port} (as 'alice', no sign-in)" in line
        assert await wait_for_http(f"http://127.0.0.1:{port}/api/avatars", 10) == 200
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 60) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    with pytest.raises(aiohttp.ClientConnectionError):
        await wait_for_http(f"http://127.0.0.1:{port}/healthz", 0)


def _exists(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def _children(pid: int) -> list[tuple[int, str]]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append((int(entry.name), cmdline))
    return found


@session_loop
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads child processes from /proc (Linux)")
async def test_python_m_bot_runs_the_web_in_its_own_process(
    emulator: DiscordEmulator, tmp_path: Path
) -> None:
    (tmp_path / "data").mkdir()
    await migrate.upgrade(f"sqlite+aiosqlite:///{(tmp_path / 'data' / 'chibify.db').as_posix()}")
    port = free_port()
    env = env_for(
        tmp_path,
        CHIBIFY_DISCORD_TOKEN=emulator.token,
        CHIBIFY_WEB_PORT=str(port),
        CHIBIFY_DISCORD_CLIENT_ID=str(emulator.application_id),
        CHIBIFY_DISCORD_CLIENT_SECRET="not-used-here",
        CHIBIFY_WEB_SECRET=GOOD_SECRET,
        **emulator.process_env(),
    )
    with (tmp_path / "bot.log").open("wb") as log:
        bot = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.discord.launch", "bot", cwd=tmp_path, env=env, stdout=log, stderr=log
        )
        try:
            assert await wait_for_http(f"http://127.0.0.1:{port}/healthz", 60) == 200
            webs = [pid for pid, cmd in _children(bot.pid) if "bot.cli web" in cmd]
            assert len(webs) == 1 and webs[0] != bot.pid
            bot.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(bot.wait(), 90) == 0
            assert not _exists(webs[0])  # stopped (and reaped) with the bot
        finally:
            if bot.returncode is None:
                bot.kill()
                await bot.wait()
    with pytest.raises(aiohttp.ClientConnectionError):
        await wait_for_http(f"http://127.0.0.1:{port}/healthz", 0)
