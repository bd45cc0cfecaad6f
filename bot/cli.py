"""``chibify``: the console. The same use cases as the bot (bot/studio.py), for people without a Discord token
and for operators. Friendly text by default, ``--json`` for scripts; errors go to stderr as one line that says
what to do, with a non-zero exit code.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bot import train_cli
from bot.errors import BadInput, UserError
from bot.settings import Settings, configure_logging

log = logging.getLogger(__name__)

EPILOG = """examples:
  chibify db upgrade
  chibify avatar "pink twin tails cat girl with glasses, smiling" --user alice
  chibify avatar "粉色双马尾猫耳少女，戴眼镜，微笑" --json
  chibify edit AVATAR_ID --add crown --expression wink --hair-color "#88ccff"
  chibify history --user alice
  chibify export AVATAR_ID --format stickers --out stickers/
  chibify dataset build --count 30000 --size 64 --out data/chibi64
  chibify train diffusion --data data/chibi64 --out runs/diffusion --max-minutes 60

settings come from CHIBIFY_* environment variables or a .env file (see .env.example)."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="chibify",
        description="Make cute chibi avatars from text (and selfies), edit them, and keep them in your history.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log what happens (to stderr)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def user_opt(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--user", default="me", metavar="NAME", help="whose history to use (default: me)")

    def out_opts(sp: argparse.ArgumentParser) -> None:
        sp.add_argument(
            "--out",
            type=Path,
            default=Path("out"),
            metavar="DIR",
            help="where to write images (default: out)",
        )
        sp.add_argument("--json", action="store_true", help="print one JSON object per avatar")

    a = sub.add_parser("avatar", help="make avatars from a text prompt (English or 中文)")
    a.add_argument("prompt", help='what you want, e.g. "pink twin tails, cat ears, glasses, smile"')
    user_opt(a)
    a.add_argument("--seed", type=int, help="seed for the open choices (same prompt + seed = same avatar)")
    a.add_argument("--count", type=int, default=1, choices=range(1, 5), metavar="K", help="how many (1-4)")
    a.add_argument("--engine", choices=("chibi", "diffusion", "gan"), help="engine (default: CHIBIFY_ENGINE)")
    out_opts(a)

    s = sub.add_parser("selfie", help="turn a photo of a face into a chibi avatar (the photo is not kept)")
    s.add_argument("photo", type=Path, help="JPEG, PNG, WebP, GIF, BMP or TIFF, up to 10 MB")
    user_opt(s)
    s.add_argument("--prompt", default="", help='changes on top, e.g. "add cat ears"')
    s.add_argument("--engine", choices=("chibi", "diffusion", "gan"), help="engine (default: CHIBIFY_ENGINE)")
    out_opts(s)

    e = sub.add_parser("edit", help="change an avatar, keeping the character (makes a new avatar)")
    e.add_argument("avatar_id", help="the avatar's id (see `chibify history`)")
    user_opt(e)
    e.add_argument("--add", action="append", default=[], metavar="ITEM", help="add an item (repeatable)")
    e.add_argument(
        "--remove", action="append", default=[], metavar="ITEM", help="remove an item (repeatable)"
    )
    e.add_argument("--expression", metavar="E", help="e.g. smile, wink, 害羞")
    e.add_argument("--hair-color", metavar="C", help="colour name or #hex")
    e.add_argument("--eye-color", metavar="C", help="colour name or #hex")
    e.add_argument("--background", metavar="C", help="background kind (stars, hearts...) or colour")
    e.add_argument("--prompt", help='free-text change, e.g. "add a crown and make her sad"')
    out_opts(e)

    v = sub.add_parser("vary", help="variations of an avatar: same spec, new seeds")
    v.add_argument("avatar_id")
    user_opt(v)
    v.add_argument("--count", type=int, default=1, choices=range(1, 5), metavar="K", help="how many (1-4)")
    out_opts(v)

    h = sub.add_parser("history", help="list your avatars, newest first")
    user_opt(h)
    h.add_argument("--page", type=int, default=1, metavar="N", help="page number (9 per page)")
    h.add_argument("--favourites", action="store_true", help="favourites only")
    h.add_argument("--json", action="store_true", help="print JSON")

    sh = sub.add_parser("show", help="show one avatar and its lineage")
    sh.add_argument("avatar_id")
    user_opt(sh)
    sh.add_argument("--json", action="store_true", help="print JSON")

    x = sub.add_parser("export", help="export an avatar as PNG, SVG, blink GIF/APNG or a sticker pack")
    x.add_argument("avatar_id")
    user_opt(x)
    x.add_argument(
        "--format", required=True, choices=("png", "svg", "gif", "apng", "stickers", "circle", "transparent")
    )
    x.add_argument("--size", type=int, default=512, metavar="N", help="pixels, 64-2048 (default 512)")
    x.add_argument("--out", type=Path, default=Path("out"), metavar="DIR")

    fav = sub.add_parser("favourite", help="mark (or with --off, unmark) an avatar as a favourite")
    fav.add_argument("avatar_id")
    user_opt(fav)
    fav.add_argument("--off", action="store_true")

    d = sub.add_parser("delete", help="delete one avatar")
    d.add_argument("avatar_id")
    user_opt(d)

    f = sub.add_parser("forget", help="delete everything of a user: avatars, images, jobs, settings")
    f.add_argument("--user", required=True, metavar="NAME")
    f.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    c = sub.add_parser("catalog", help="everything you can ask for, in English and 中文")
    c.add_argument("--json", action="store_true")
    c.add_argument("category", nargs="?", help="only this category (e.g. item, hair_style, color)")

    db = sub.add_parser("db", help="database maintenance")
    dbs = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    dbs.add_parser("upgrade", help="apply migrations (run after every update)")
    dbs.add_parser("current", help="show the database's revision")
    gc = dbs.add_parser("gc", help="remove image files no avatar points at")
    gc.add_argument(
        "--grace", type=float, default=3600.0, metavar="S", help="keep files younger than S seconds"
    )
    train_cli.add_parsers(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging("DEBUG" if args.verbose else "WARNING")
    if args.command in train_cli.COMMANDS:  # no settings, no database: files in, files out
        try:
            return train_cli.run(args)
        except UserError as exc:
            print(f"chibify: {exc}", file=sys.stderr)
            return exc.exit_code
        except KeyboardInterrupt:
            print(
                "chibify: interrupted (the last checkpoint is kept; run the same command to go on)",
                file=sys.stderr,
            )
            return 130
    try:
        settings = Settings()
    except Exception as exc:  # pydantic ValidationError: bad CHIBIFY_* value
        print(
            f"chibify: bad setting: {_first_line(exc)} (check your CHIBIFY_* variables or .env)",
            file=sys.stderr,
        )
        return 2
    from bot import commands  # local: keeps `chibify --help` instant

    try:
        return asyncio.run(commands.run(args, settings))
    except UserError as exc:
        print(f"chibify: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("chibify: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `chibify catalog | head`: the reader left; that is fine
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return " ".join(t.strip() for t in text[:3]) if text else type(exc).__name__


def print_json(obj: Any) -> None:
    print(json.dumps(obj, ensure_ascii=False, sort_keys=False))


def require_size(size: int) -> int:
    if not 64 <= size <= 2048:
        raise BadInput(f"size {size} is out of range.", "Use a size from 64 to 2048 pixels.")
    return size


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
