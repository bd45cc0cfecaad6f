"""What each ``chibify`` subcommand does: call the studio, print friendly text or JSON, write files."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import stat
import sys
import unicodedata
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from bot.app import open_app, open_storage
from bot.cli import print_json, require_size
from bot.errors import BadInput, UserError
from bot.settings import Settings
from bot.studio import MAX_COUNT, MAX_PHOTO_BYTES, Actor, AvatarView, Outcome, Pending, Studio
from generation import catalog
from generation.jobs import ProgressEvent
from generation.service import UNSERVED


async def run(args: argparse.Namespace, settings: Settings) -> int:
    command: str = args.command
    if command == "catalog":
        return _catalog(args)
    if command == "db":
        return await _db(args, settings)
    if command == "web":
        return await _web(args, settings)
    if command in ("worker", "workers"):  # the broker only: no database, no token
        from bot import worker_cli

        return await (worker_cli.run_worker if command == "worker" else worker_cli.run_workers)(
            args, settings
        )
    check_args(args)  # all of them, before the confirmation and before a database is opened
    if (
        command == "forget"
        and not args.yes
        and not _confirm(f"Delete every avatar and image of {args.user!r}?")
    ):
        print("nothing deleted.")
        return 1
    actor = Actor(console_name=args.user)
    generate = command in {"avatar", "selfie", "edit", "vary"}
    async with open_app(settings, generate=generate, recover=False) as app:
        return await _HANDLERS[command](app.studio, actor, args)


# --- generation commands ------------------------------------------------------------------------------


async def _avatar(studio: Studio, actor: Actor, args: argparse.Namespace) -> int:
    pending = await studio.submit_create(
        actor, args.prompt, count=args.count, seed=args.seed, engine=args.engine
    )
    return await _finish(studio, pending, args)


async def _selfie(studio: Studio, actor: Actor, args: argparse.Namespace) -> int:
    pending = await studio.submit_selfie(
        actor, args.photo_data, prompt=args.prompt, engine=args.engine, face=args.face
    )
    pending.notes.append("Your photo was analysed in memory and not kept.")
    return await _finish(studio, pending, args)


async def _edit(studio: Studio, actor: Actor, args: argparse.Namespace) -> int:
    pending = await studio.submit_edit(
        actor,
        args.avatar_id,
        add=args.add,
        remove=args.remove,
        expression=args.expression,
        hair_color=args.hair_color,
        eye_color=args.eye_color,
        background=args.background,
        prompt=args.prompt,
    )
    return await _finish(studio, pending, args)


async def _vary(studio: Studio, actor: Actor, args: argparse.Namespace) -> int:
    pending = await studio.submit_variations(actor, args.avatar_id, count=args.count)
    return await _finish(studio, pending, args)


async def _finish(studio: Studio, pending: Pending, args: argparse.Namespace) -> int:
    progress = _Progress(len(pending.handles), enabled=not args.json and sys.stderr.isatty())
    watchers = [asyncio.create_task(_watch(h.events(), progress)) for h in pending.handles]
    try:
        outcome = await studio.finish(pending)
    finally:
        for w in watchers:
            w.cancel()
        progress.close()
    out_dir: Path = args.out
    kept = [v.id for v in outcome.avatars]
    for view in outcome.avatars:
        _, png = await studio.image(Actor(console_name=args.user), view.id)
        path = out_dir / f"{view.id}.png"
        await _write(path, png, kept)
        if args.json:
            print_json(view.to_json(str(path)))
        else:
            print(f"made {view.id}  ->  {path}")
    if not args.json:
        _explain(outcome)
    for failure in outcome.failures:
        print(f"chibify: one avatar could not be made: {failure}", file=sys.stderr)
    return 1 if outcome.failures else 0


async def _watch(events: Any, progress: _Progress) -> None:
    async for event in events:
        progress.update(event)


def _explain(outcome: Outcome) -> None:
    if outcome.understood:
        print("understood: " + ", ".join(f"{u.phrase} -> {u.en}" for u in outcome.understood))
    if outcome.ignored:
        print("ignored (not understood): " + ", ".join(outcome.ignored))
    if outcome.removed:
        print("removed: " + ", ".join(outcome.removed))
    if outcome.changes:
        print("changed: " + "; ".join(outcome.changes))
    for note in outcome.notes:
        print(f"note: {note}")


class _Progress:
    """A one-line progress bar on stderr (only on a terminal)."""

    def __init__(self, total: int, *, enabled: bool) -> None:
        self.total = total
        self.enabled = enabled
        self.done = 0
        self.status = "queued"
        self.told: set[str] = set()

    def update(self, event: ProgressEvent) -> None:
        if event.message.startswith(UNSERVED) and event.message not in self.told:
            # With a broker and no worker for the engine: say so at once (terminal or not), never draw here.
            self.told.add(event.message)
            sys.stderr.write(f"\rchibify: {event.message}; waiting for one (Ctrl-C to stop waiting)\n")
            sys.stderr.flush()
        if event.final:
            self.done += 1
        if event.kind == "position" and event.position is not None:
            eta = f", about {event.eta_s:.0f} s" if event.eta_s else ""
            self.status = f"in queue, position {event.position}{eta}"
        elif event.kind in ("started", "step"):
            self.status = "drawing"
        self._draw()

    def _draw(self) -> None:
        if not self.enabled:
            return
        width = 24
        filled = int(width * self.done / max(1, self.total))
        bar = "#" * filled + "-" * (width - filled)
        sys.stderr.write(f"\r[{bar}] {self.done}/{self.total} {self.status:<40}")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\r" + " " * 80 + "\r")
            sys.stderr.flush()


# --- reading and managing -------------------------------------------------------------------------------


async def _history(studio: Studio, actor: Actor, args: argparse.Namespace) -> int:
    view = await studio.history(actor, page=args.page, favourites=args.favourites)
    if args.json:
        print_json(
            {
                "page": view.page,
                "pages": view.pages,
                "total": view.total,
                "avatars": [await _json(studio, a) for a in view.items],
            }
        )
        return 0
    if not view.total:
        print(f'{actor.console_name} has no avatars yet. Make one: chibify avatar "pink hair, cat ears"')
        return 0
    print(
        f"{actor.console_name}'s avatars, page {view.page} of {view.pages} ({view.total} in all), newest first:"
    )
    for a in view.items:
        star = "*" if a.favourite else " "
        prompt = (a.prompt[:48] + "...") if len(a.prompt) > 51 else a.prompt
        print(f" {star} {a.id}  {a.created:%Y-%m-%d %H:%M}  {a.kind:<9} {prompt}")
    return 0


async def _show(studio: Studio, actor: Actor, args: argparse.Namespace) -> int:
    avatar, lineage = await studio.show(actor, args.avatar_id)
    if args.json:
        data = await _json(studio, avatar)
        data["lineage"] = [a.id for a in lineage]
        print_json(data)
        return 0
    print(
        f"{avatar.id}: {avatar.kind} by {avatar.engine}, seed {avatar.seed}, {avatar.width}x{avatar.height}"
    )
    print(f"  prompt: {avatar.prompt or '(none)'}")
    print(f"  image:  {await studio.image_path(avatar)}")
    if len(lineage) > 1:
        print("  lineage: " + " -> ".join(a.id for a in lineage))
    return 0


async def _export(studio: Studio, actor: Actor, args: argparse.Namespace) -> int:
    files = await studio.export(actor, args.avatar_id, args.format, size=args.size)
    out_dir: Path = args.out
    for name, data in files.items():
        path = out_dir / name
        await _write(path, data)
        print(f"wrote {path} ({len(data) // 1024 or 1} KB)")
    return 0


async def _favourite(studio: Studio, actor: Actor, args: argparse.Namespace) -> int:
    view = await studio.favourite(actor, args.avatar_id, not args.off)
    print(f"{view.id} is {'now a favourite' if view.favourite else 'no longer a favourite'}.")
    return 0


async def _delete(studio: Studio, actor: Actor, args: argparse.Namespace) -> int:
    removal = await studio.delete(actor, args.avatar_id)
    print(f"deleted {removal.avatar.id}.")
    return 0


async def _forget(studio: Studio, actor: Actor, args: argparse.Namespace) -> int:
    gone = await studio.forget(actor)
    print(
        f"forgot {actor.console_name}: {gone.avatars} avatars, {gone.jobs} jobs, {gone.images} images removed."
    )
    return 0


_HANDLERS = {
    "avatar": _avatar,
    "selfie": _selfie,
    "edit": _edit,
    "vary": _vary,
    "history": _history,
    "show": _show,
    "export": _export,
    "favourite": _favourite,
    "delete": _delete,
    "forget": _forget,
}


async def _json(studio: Studio, view: AvatarView) -> dict[str, Any]:
    return view.to_json(await studio.image_path(view))


# --- catalog and database ---------------------------------------------------------------------------------


def _catalog(args: argparse.Namespace) -> int:
    cats: Iterable[str] = catalog.CATEGORIES
    if args.category:
        if args.category not in catalog.CATEGORIES:
            raise BadInput(
                f"unknown category {args.category!r}.", f"Choose from: {', '.join(catalog.CATEGORIES)}."
            )
        cats = [args.category]
    if args.json:
        print(json.dumps(catalog.to_json(cats), ensure_ascii=False, indent=2))
        return 0
    for cat in cats:
        entries = catalog.CATEGORIES[cat]
        print(f"{cat.replace('_', ' ')} ({len(entries)}):")
        for e in entries:
            extra = f" [{e.slot}]" if e.slot else (f" {e.hex}" if e.hex else "")
            print(f"  {e.id:<16} {e.en} / {e.zh}{extra}")
    return 0


async def _db(args: argparse.Namespace, settings: Settings) -> int:
    from storage import migrate

    url = settings.resolved_database_url
    if args.db_command == "upgrade":
        await asyncio.to_thread(settings.data_dir.mkdir, parents=True, exist_ok=True)
        before = await migrate.current_revision(url)
        await migrate.upgrade(url)
        after = await migrate.current_revision(url)
        print(f"database is at revision {after}" + ("" if before == after else f" (was {before or 'empty'})"))
        return 0
    if args.db_command == "current":
        current = await migrate.current_revision(url)
        head = migrate.head_revision()
        state = "up to date" if current == head else f"behind: run `chibify db upgrade` (newest is {head})"
        print(f"database revision {current or 'none'}: {state}")
        return 0 if current == head else 1
    storage = await open_storage(settings)
    try:
        result = await storage.gc_blobs(grace_seconds=args.grace)
    finally:
        await storage.close()
    print(f"removed {result.blobs} unused images and {result.temp_files} leftover temporary files.")
    return 0


# --- the web gallery ---------------------------------------------------------------------------------------


async def _web(args: argparse.Namespace, settings: Settings) -> int:
    """``chibify web``: every check before the database opens; then serve until SIGTERM/SIGINT."""
    from bot.web.app import serve
    from bot.web.config import web_config

    port = args.port if args.port is not None else settings.web_port or 8080
    if not 1 <= port <= 65535:
        raise BadInput(f"port {port} is out of range.", "Use a port from 1 to 65535.")
    host = args.host or ("127.0.0.1" if args.local_user is not None else settings.web_host)
    if args.local_user is not None:
        check_user_name(args.local_user)
    config = web_config(settings, host=host, port=port, local_user=args.local_user)
    return await serve(settings, config, host=host, port=port)


# --- checks before anything is queued or stored ------------------------------------------------------------

#: The highest ``--page``: far beyond any history, and its row offset still fits every database's integers.
MAX_PAGE = 2**31 - 1
#: A console user name, as the users table stores it.
MAX_USER_NAME = 64
_FOLDER_HINT = "Give a folder to write the images to."


def check_args(args: argparse.Namespace) -> None:
    """Every check on a command's arguments, before a database is opened: a bad one leaves nothing behind.

    (Text is checked for invalid UTF-8 and NUL bytes by ``bot.cli.check_text_args`` before this.)
    """
    command: str = args.command
    check_user_name(args.user)
    if command == "history" and not 1 <= args.page <= MAX_PAGE:
        hint = "Pages start at 1." if args.page < 1 else "`chibify history` says how many pages there are."
        raise BadInput(f"page {args.page} does not exist.", hint)
    if command == "avatar" and args.seed is not None:
        from generation.spec import MAX_SEED

        if not 0 <= args.seed <= MAX_SEED - MAX_COUNT:
            raise BadInput(
                f"seed {args.seed} is out of range.", f"Use a seed from 0 to {MAX_SEED - MAX_COUNT}."
            )
    if command == "export":
        require_size(args.size)
    if command in {"avatar", "selfie", "edit", "vary", "export"}:
        check_out_dir(args.out)
    if command == "selfie":
        from bot.studio import MAX_FACES

        if args.face is not None and not 1 <= args.face <= MAX_FACES:
            raise BadInput(
                f"--face {args.face} is out of range.", f"Faces count from 1 (leftmost) to {MAX_FACES}."
            )
        args.photo_data = read_photo(args.photo)


def check_user_name(name: str) -> None:
    """1 to 64 characters, no surrounding spaces, no control characters (the storage layer's rule)."""
    if not name.strip():
        raise BadInput("the user name is empty.", "Pass --user NAME.")
    if name != name.strip():
        raise BadInput("the user name starts or ends with a space.", "Pass --user NAME without them.")
    if len(name) > MAX_USER_NAME:
        raise BadInput(
            f"the user name is {len(name)} characters long; the limit is {MAX_USER_NAME}.",
            "Pass a shorter --user NAME.",
        )
    if any(unicodedata.category(c) in {"Cc", "Cs", "Zl", "Zp"} for c in name):
        raise BadInput("the user name contains a control character or a line break.", "Remove it.")


def check_out_dir(path: Path) -> None:
    """``--out`` is a folder that can be written to, or can be made in one (it is made when writing)."""
    probe = path
    while True:
        try:
            st = os.stat(probe)
            break
        except (FileNotFoundError, NotADirectoryError):
            if probe.parent == probe:
                raise BadInput(f"cannot use --out {path}: no such folder.", _FOLDER_HINT) from None
            probe = probe.parent
        except OSError as exc:
            raise BadInput(f"cannot use --out {path}: {exc.strerror}.", _FOLDER_HINT) from None
    if not stat.S_ISDIR(st.st_mode):
        where = "" if probe == path else f" ({probe} is not a folder)"
        raise BadInput(f"--out {path} is not a folder{where}.", _FOLDER_HINT)
    if not os.access(probe, os.W_OK | os.X_OK):
        raise BadInput(f"cannot write to --out {path} ({probe} is read-only).", _FOLDER_HINT)


async def _write(path: Path, data: bytes, kept: Sequence[str] = ()) -> None:
    """Write one output file; a failure (disk full, folder removed meanwhile) is one line, not a traceback."""

    def write() -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    try:
        await asyncio.to_thread(write)
    except OSError as exc:
        hint = f"The avatar is kept: chibify export {kept[0]} --format png --out DIR." if kept else ""
        raise UserError(f"could not write {path}: {exc.strerror or exc}.", hint) from None


_NOT_REGULAR = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
)


def read_photo(path: Path) -> bytes:
    """The photo's bytes, at most 10 MB: counted as read, so a file that grows or lies about its size cannot
    make it read more. Folders, devices, FIFOs and sockets are refused before anything is read."""
    limit = MAX_PHOTO_BYTES
    too_big = BadInput(f"{path} is over 10 MB; photos may be up to 10 MB.", "Send a smaller photo.")
    try:
        st = os.stat(path)
        _require_regular(path, st.st_mode)
        if st.st_size > limit:
            raise too_big
        # O_NONBLOCK: if the path was swapped for a FIFO since the check, opening it does not wait for a writer
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        with open(fd, "rb") as f:
            _require_regular(path, os.fstat(f.fileno()).st_mode)
            data = f.read(limit + 1)
    except OSError as exc:
        raise BadInput(f"cannot read {path}: {exc.strerror or exc}.", "Check the path.") from None
    if len(data) > limit:
        raise too_big
    return data


def _require_regular(path: Path, mode: int) -> None:
    if not stat.S_ISREG(mode):
        what = next((name for test, name in _NOT_REGULAR if test(mode)), "an unusual kind of file")
        raise BadInput(f"{path} is not a regular file (it is {what}).", "Give the path of a photo file.")


def _confirm(question: str) -> bool:
    if not sys.stdin.isatty():
        raise BadInput("refusing to delete without confirmation.", "Add --yes to confirm.")
    return input(f"{question} [y/N] ").strip().lower() in {"y", "yes"}
