"""Console hygiene (issue 12, item 5), through the real ``chibify`` console script in subprocesses: exit codes,
stderr lines and tracebacks are what a person at a terminal sees, so they are checked at the process level.

- ids that start with "-" work in every command (and new ids never start with one);
- photo reads are bounded, and folders, devices, FIFOs and sockets are refused unread;
- every argument check runs before anything is queued or stored;
- every error is one line on stderr with a non-zero exit, argparse's own included; never a traceback.
"""

from __future__ import annotations

import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot import commands
from bot.errors import BadInput
from storage.models import new_public_id

#: Real ids as old versions made them, 1 in 64: "-h..." would have printed the help, "--..." was an option.
DASH_ID = "-hAvatar_0123456"
DOUBLE_DASH_ID = "--Avatar_0123456"
OWNER = "alice"

CHIBIFY = Path(sys.executable).with_name("chibify")
TIMEOUT_S = 120  # a refused FIFO that was read after all would hang: fail instead


@dataclass
class Console:
    home: Path
    env: dict[str, str]

    def run(self, *argv: str | bytes, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(CHIBIFY), *argv],
            cwd=self.home,
            env=env or self.env,
            capture_output=True,
            text=True,
            errors="backslashreplace",
            timeout=TIMEOUT_S,
            check=False,
        )

    def ok(self, *argv: str) -> str:
        done = self.run(*argv)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def rows(self) -> dict[str, int]:
        """How many users, avatars and jobs the database holds."""
        with sqlite3.connect(self.home / "data" / "chibify.db") as db:
            return {
                t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("users", "avatars", "jobs")
            }

    def outputs(self) -> list[Path]:
        """The files the console wrote to its default --out folder."""
        return sorted((self.home / "out").rglob("*"))

    def rename(self, public_id: str, new_id: str) -> None:
        """Give an avatar one of the ids that old versions made (there is no other way to get one now)."""
        with sqlite3.connect(self.home / "data" / "chibify.db") as db:
            changed = db.execute("UPDATE avatars SET public_id = ? WHERE public_id = ?", (new_id, public_id))
            assert changed.rowcount == 1


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    """A data folder with the schema and two of alice's avatars, whose ids start with "-" and "--"."""
    if not CHIBIFY.is_file():
        pytest.skip(f"the console script is not installed next to {sys.executable} (pip install -e .)")
    home = tmp_path_factory.mktemp("console")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHIBIFY_")}
    env["CHIBIFY_DATA_DIR"] = str(home / "data")
    c = Console(home, env)
    c.ok("db", "upgrade")
    made = [
        json.loads(line)
        for line in c.ok("avatar", "pink twin tails", "--user", OWNER, "--json", "--count", "2").splitlines()
    ]
    c.rename(made[0]["id"], DASH_ID)
    c.rename(made[1]["id"], DOUBLE_DASH_ID)
    yield c


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode != 0, done.stdout
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and done.stderr.endswith("\n"), done.stderr
    assert lines[0].startswith("chibify: "), lines[0]
    return lines[0]


# --- ids that start with "-" ----------------------------------------------------------------------------


def test_new_public_ids_never_start_with_a_dash() -> None:
    ids = [new_public_id() for _ in range(20_000)]  # the old ids: about 312 of these would
    assert not [i for i in ids if i.startswith("-")]
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{16}", i) for i in ids)
    assert len(set(ids)) == len(ids)
    assert any("-" in i for i in ids) and any("_" in i for i in ids)  # the same URL-safe alphabet inside


def test_an_id_that_starts_with_a_dash_works_in_every_command(console: Console) -> None:
    shown = json.loads(console.ok("show", DASH_ID, "--user", OWNER, "--json"))
    assert shown["id"] == DASH_ID
    assert json.loads(console.ok("show", "--user", OWNER, DOUBLE_DASH_ID, "--json"))["id"] == DOUBLE_DASH_ID
    assert json.loads(console.ok("-v", "show", "--json", DASH_ID, "--user", OWNER))["id"] == DASH_ID

    assert "now a favourite" in console.ok("favourite", DASH_ID, "--user", OWNER)
    assert "no longer" in console.ok("favourite", "--user", OWNER, DASH_ID, "--off")

    console.ok("export", DASH_ID, "--user", OWNER, "--format", "png", "--size", "64", "--out", "ex")
    assert (console.home / "ex" / f"{DASH_ID}.png").is_file()

    [edited] = [
        json.loads(x)
        for x in console.ok("edit", DASH_ID, "--user", OWNER, "--add", "crown", "--json").splitlines()
    ]
    assert edited["parent"] == DASH_ID and "crown" in edited["spec"]["items"]
    [varied] = [
        json.loads(x) for x in console.ok("vary", DOUBLE_DASH_ID, "--user", OWNER, "--json").splitlines()
    ]
    assert varied["parent"] == DOUBLE_DASH_ID

    assert f"deleted {DOUBLE_DASH_ID}." in console.ok("delete", DOUBLE_DASH_ID, "--user", OWNER)
    line = one_error_line(console.run("show", DOUBLE_DASH_ID, "--user", OWNER))
    assert "no avatar" in line

    # an unknown id that starts with "-" is an unknown id, not an unknown option
    line = one_error_line(console.run("show", "-abc", "--user", OWNER))
    assert "no avatar" in line and "-abc" in line


def test_option_values_may_start_with_a_dash(console: Console) -> None:
    [made] = [
        json.loads(x) for x in console.ok("avatar", "short hair", "--user", "-dash-", "--json").splitlines()
    ]
    assert made["owner"] == "console:-dash-"
    assert json.loads(console.ok("history", "--user=-dash-", "--json"))["total"] == 1


# --- bad input: one line, non-zero, nothing queued or stored ----------------------------------------------


def _fifo(home: Path) -> str:
    path = home / "photo.fifo"
    if not path.exists():
        os.mkfifo(path)
    return str(path)


def _socket(home: Path) -> str:
    path = home / "photo.sock"
    if not path.exists():
        with socket.socket(socket.AF_UNIX) as s:
            s.bind(str(path))  # the file stays after the socket is closed
    return str(path)


def _file(home: Path) -> str:
    path = home / "a-file"
    path.write_bytes(b"not a folder")
    return str(path)


def _big_photo(home: Path) -> str:
    path = home / "big.jpg"
    with path.open("wb") as f:
        f.truncate(11 * 1024 * 1024)  # sparse: no 11 MB written
    return str(path)


BAD = [
    # argparse's own errors
    (
        ["avatar", "pink", "--count", "x"],
        "error: argument --count: invalid int value: 'x' (see chibify avatar --help)",
    ),
    (["avatar", "pink", "--count", "0"], "invalid choice: 0"),
    (["vary", DASH_ID, "--count", "5"], "invalid choice: 5"),
    (["avatr", "pink"], "invalid choice: 'avatr'"),
    ([], "the following arguments are required: COMMAND"),
    (["show", "--user", OWNER], "the following arguments are required: avatar_id (see chibify show --help)"),
    (["show", DASH_ID, "extra"], "unrecognized arguments: extra (see chibify show --help)"),
    (["export", DASH_ID, "--format", "jpeg"], "invalid choice: 'jpeg'"),
    # ranges
    (["history", "--page", "0"], "page 0 does not exist"),
    (["history", "--page", "-3", "--user", OWNER], "page -3 does not exist"),
    (["history", "--page", "100000000000000000000", "--user", OWNER], "does not exist"),
    (["avatar", "pink", "--seed", "-1"], "seed -1 is out of range"),
    (["export", DASH_ID, "--user", OWNER, "--format", "png", "--size", "4096"], "64 to 2048"),
    (["export", DASH_ID, "--user", OWNER, "--format", "png", "--size", "8"], "64 to 2048"),
    # user names
    (["history", "--user", "x" * 65], "limit is 64"),
    (["avatar", "pink", "--user", "x" * 65], "limit is 64"),
    (["avatar", "pink", "--user", " alice"], "space"),
    (["avatar", "pink", "--user", "al\tice"], "control character"),
    (["forget", "--user", "", "--yes"], "user name is empty"),
    # --out
    (["avatar", "pink", "--out", "/dev/null"], "--out /dev/null is not a folder"),
    (["avatar", "pink", "--out", "{file}/sub"], "not a folder"),
    (["edit", DASH_ID, "--user", OWNER, "--add", "crown", "--out", "/dev/null"], "not a folder"),
    (["vary", DASH_ID, "--user", OWNER, "--out", "{file}"], "not a folder"),
    (["export", DASH_ID, "--user", OWNER, "--format", "png", "--out", "/dev/null"], "not a folder"),
    # photos
    (["selfie", "/dev/zero"], "/dev/zero is not a regular file (it is a character device)"),
    (["selfie", "."], "is not a regular file (it is a folder)"),
    (["selfie", "{fifo}"], "is not a regular file (it is a FIFO)"),
    (["selfie", "{socket}"], "is not a regular file (it is a socket)"),
    (["selfie", "{big}"], "photos may be up to 10 MB"),
    (["selfie", "no-such-photo.jpg"], "cannot read no-such-photo.jpg"),
    # text that no database stores: invalid UTF-8 (argv cannot carry NUL; see the unit test below)
    ([b"avatar", b"pink \xff hair"], "the prompt is not valid UTF-8"),
    ([b"avatar", b"pink", b"--user", b"al\xffice"], "the user name is not valid UTF-8"),
    (
        [b"edit", DASH_ID.encode(), b"--user", b"alice", b"--add", b"cr\xffown"],
        "item to add is not valid UTF-8",
    ),
    ([b"edit", DASH_ID.encode(), b"--user", b"alice", b"--hair-color", b"\xff"], "hair colour is not valid"),
    ([b"selfie", b"x.jpg", b"--prompt", b"\xfe cat ears"], "the prompt is not valid UTF-8"),
    ([b"avatar", b"pink", b"--out", b"out\xff"], "not valid UTF-8"),
    # the use cases' own checks, still one line
    (["show", "nosuchavatar0000", "--user", OWNER], "no avatar"),
    (["edit", DASH_ID, "--user", OWNER, "--prompt", ""], "nothing to change"),
    (["edit", DASH_ID, "--user", OWNER, "--add", "spaceship"], "spaceship"),
]


@pytest.mark.parametrize(("argv", "expected"), BAD, ids=[" ".join(map(str, a)) or "(none)" for a, _ in BAD])
def test_bad_input_is_one_line_and_stores_nothing(
    console: Console, argv: list[str | bytes], expected: str
) -> None:
    fill = {
        "{file}": _file(console.home),
        "{fifo}": _fifo(console.home),
        "{socket}": _socket(console.home),
        "{big}": _big_photo(console.home),
    }
    args = [a if isinstance(a, bytes) else _fill(a, fill) for a in argv]
    before = console.rows(), console.outputs()
    done = console.run(*args)
    line = one_error_line(done)
    assert expected in line
    assert done.stdout == ""
    assert done.returncode in (1, 2)  # 2: a bad argument; 1: no such avatar
    assert (console.rows(), console.outputs()) == before  # no user, job, avatar or file made


def _fill(arg: str, fill: dict[str, str]) -> str:
    for key, value in fill.items():
        arg = arg.replace(key, value)
    return arg


def test_help_is_still_full_and_exits_0(console: Console) -> None:
    for argv in (["--help"], ["avatar", "--help"], ["show", "-h"]):
        done = console.run(*argv)
        assert done.returncode == 0 and done.stderr == ""
        assert done.stdout.startswith("usage: chibify") and len(done.stdout.splitlines()) > 5


def test_an_internal_error_is_one_line_with_a_reference_and_the_traceback_only_with_v(
    console: Console,
) -> None:
    broken = console.home / "broken.db"
    broken.write_bytes(b"this is not a database " * 100)
    env = dict(console.env, CHIBIFY_DATABASE_URL=f"sqlite+aiosqlite:///{broken}")
    done = console.run("history", "--user", OWNER, env=env)
    line = one_error_line(done)
    assert done.returncode == 70
    ref = re.search(r"internal error \(ref ([0-9a-f]{8})\)", line)
    assert ref and "-v" in line

    verbose = console.run("-v", "history", "--user", OWNER, env=env)
    assert verbose.returncode == 70
    assert "Traceback" in verbose.stderr and "DatabaseError" in verbose.stderr
    *_, last = verbose.stderr.splitlines()
    logged = re.search(r"internal error, ref ([0-9a-f]{8})", verbose.stderr)
    assert logged and f"(ref {logged.group(1)})" in last


# --- unit checks for what argv cannot carry ----------------------------------------------------------------


def test_photo_reads_are_bounded_by_the_bytes_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file that says it is small (as /proc files do, or one that grows) is still cut at 10 MB + 1."""
    big = tmp_path / "grown.jpg"
    with big.open("wb") as f:
        f.truncate(64 * 1024 * 1024)
    real_stat = os.stat

    def stat_says_small(path: object, *a: object, **k: object) -> os.stat_result:
        st = real_stat(path, *a, **k)  # type: ignore[arg-type]
        return os.stat_result(
            (st.st_mode, st.st_ino, st.st_dev, st.st_nlink, st.st_uid, st.st_gid, 1000, 0, 0, 0)
        )

    monkeypatch.setattr(commands.os, "stat", stat_says_small)
    with pytest.raises(BadInput, match="up to 10 MB"):
        commands.read_photo(big)
    small = tmp_path / "small.jpg"
    small.write_bytes(b"x" * 1000)
    assert commands.read_photo(small) == b"x" * 1000


@pytest.mark.parametrize("value", ["pink\x00hair", "pink \udcff hair"])
def test_text_with_nul_or_invalid_utf8_is_refused(value: str) -> None:
    from bot.cli import build_parser, check_text_args, parse_args

    for argv in (["avatar", value], ["edit", "abc", "--eye-color", value], ["history", "--user", value]):
        args = parse_args(build_parser(), argv)
        with pytest.raises(BadInput):
            check_text_args(args)
