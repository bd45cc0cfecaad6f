"""``chibify``: the console. The same use cases as the bot (bot/studio.py), for people without a Discord token
and for operators. Friendly text by default, ``--json`` for scripts; errors go to stderr as one line that says
what to do, with a non-zero exit code: argparse's own errors too, and an unexpected exception is one line with a
short reference (its traceback is logged only with ``-v``).

Every check on the arguments runs before a database is opened, so a bad argument never leaves a job or an
avatar behind. Avatar ids that start with ``-`` (old ids, 1 in 64) are read as ids, never as options.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import secrets
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from bot import train_cli, worker_cli
from bot.errors import BadInput, UserError
from bot.settings import Settings, configure_logging
from generation.engines import USER_ENGINES

log = logging.getLogger(__name__)

EPILOG = """examples:
  chibify db upgrade
  chibify avatar "pink twin tails cat girl with glasses, smiling" --user alice
  chibify avatar "粉色双马尾猫耳少女，戴眼镜，微笑" --json
  chibify edit AVATAR_ID --add crown --expression wink --hair-color "#88ccff"
  chibify history --user alice
  chibify export AVATAR_ID --format stickers --out stickers/
  chibify web --local-user alice
  chibify worker --engines chibi,diffusion   (on a GPU box; needs only CHIBIFY_BROKER_URL)
  chibify workers
  chibify dataset build --count 30000 --size 64 --out data/chibi64
  chibify train diffusion --data data/chibi64 --out runs/diffusion --max-minutes 60

settings come from CHIBIFY_* environment variables or a .env file (see .env.example)."""


class UsageError(Exception):
    """An argparse error: ``str(err)`` is argparse's message, ``prog`` the (sub)command whose help to see."""

    def __init__(self, message: str, prog: str) -> None:
        super().__init__(message)
        self.prog = prog


class _Parser(argparse.ArgumentParser):
    """argparse with its errors raised (main prints them as one line) instead of usage + error on stderr."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message, self.prog)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
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
    a.add_argument("--engine", choices=USER_ENGINES, help="engine (default: CHIBIFY_ENGINE)")
    out_opts(a)

    s = sub.add_parser("selfie", help="turn a photo of a face into a chibi avatar (the photo is not kept)")
    s.add_argument("photo", type=Path, help="JPEG, PNG, WebP, GIF, BMP or TIFF, up to 10 MB")
    user_opt(s)
    s.add_argument("--prompt", default="", help='changes on top, e.g. "add cat ears"')
    s.add_argument(
        "--face", type=int, metavar="N", help="with several faces in the photo: draw face N (1 = leftmost)"
    )
    s.add_argument("--engine", choices=USER_ENGINES, help="engine (default: CHIBIFY_ENGINE)")
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
        "--format",
        required=True,
        choices=("png", "svg", "gif", "apng", "stickers", "circle", "transparent", "pngtuber"),
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
    w = sub.add_parser(
        "web",
        help="serve the web gallery and visual editor (Discord sign-in, or --local-user without sign-in)",
        description="Serve the web gallery and the visual editor (docs/web.md). With Discord sign-in it needs "
        "CHIBIFY_DISCORD_CLIENT_ID, CHIBIFY_DISCORD_CLIENT_SECRET and CHIBIFY_WEB_SECRET; "
        "--local-user NAME shows that console user's avatars on 127.0.0.1 with no sign-in.",
    )
    w.add_argument("--host", metavar="H", help="address to listen on (default: CHIBIFY_WEB_HOST, 127.0.0.1)")
    w.add_argument(
        "--port", type=int, metavar="P", help="port to listen on (default: CHIBIFY_WEB_PORT, else 8080)"
    )
    w.add_argument(
        "--local-user",
        metavar="NAME",
        help="no sign-in: show this console user's avatars, on 127.0.0.1 only",
    )
    worker_cli.add_parsers(sub)
    train_cli.add_parsers(sub)
    return p


#: Exit code of an unexpected error (a bug): EX_SOFTWARE from sysexits.h.
EXIT_INTERNAL = 70


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command. Every error is one line on stderr and a non-zero exit; never a traceback."""
    raw = list(sys.argv[1:] if argv is None else argv)
    verbose = False
    train = False
    try:
        try:
            args = parse_args(build_parser(), raw)
        except SystemExit as exc:  # --help: argparse printed it
            return exc.code if isinstance(exc.code, int) else 0
        verbose, train = args.verbose, args.command in train_cli.COMMANDS
        configure_logging("DEBUG" if verbose else "WARNING")
        check_text_args(args)
        if train:  # no settings, no database: files in, files out
            return train_cli.run(args)
        try:
            settings = Settings()
        except Exception as exc:  # pydantic ValidationError: bad CHIBIFY_* value
            print(
                f"chibify: bad setting: {_first_line(exc)} (check your CHIBIFY_* variables or .env)",
                file=sys.stderr,
            )
            return 2
        from bot import commands  # local: keeps `chibify --help` instant

        return asyncio.run(commands.run(args, settings))
    except UsageError as exc:
        print(f"chibify: error: {_one_line(str(exc))} (see {exc.prog} --help)", file=sys.stderr)
        return 2
    except UserError as exc:
        print(f"chibify: {_one_line(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        hint = " (the last checkpoint is kept; run the same command to go on)" if train else ""
        print(f"chibify: interrupted{hint}", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `chibify catalog | head`: the reader left; that is fine
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:  # the last resort: a bug. One line for the user, the traceback only with -v.
        ref = secrets.token_hex(4)
        if verbose:
            log.error("internal error, ref %s", ref, exc_info=exc)
        print(
            f"chibify: internal error (ref {ref}). "
            + ("The details are logged above." if verbose else "Run the command again with -v for details."),
            file=sys.stderr,
        )
        return EXIT_INTERNAL


# --- parsing -------------------------------------------------------------------------------------------

#: Stands in for a value that starts with "-" while argparse runs; argv cannot hold NUL, so no real argument
#: can look like it.
_SHIELD = "\0chibify-value-"


def parse_args(parser: argparse.ArgumentParser, argv: Sequence[str]) -> argparse.Namespace:
    """``parser.parse_args``, where values that start with "-" are read as values where only a value fits.

    argparse reads any ``-abc`` as an option, so an avatar id that starts with "-" (1 in 64 of the ids made
    before they stopped doing so) was refused, or ``-h...`` printed the help. Here the token in an avatar-id
    position, and the token after an option that takes a value (``--prompt "-_-"``), are shielded from
    argparse and put back afterwards. Known options are always options: ``chibify show -h`` is the help.
    """
    tokens, shielded, leaf = _shield_dash_values(parser, argv)
    try:
        args, extra = parser.parse_known_args(tokens)
    except UsageError as exc:
        raise UsageError(_unshield(str(exc), shielded), exc.prog) from None
    if extra:
        raise UsageError(f"unrecognized arguments: {_unshield(' '.join(extra), shielded)}", leaf.prog)
    for key, value in vars(args).items():
        if isinstance(value, str) and value in shielded:
            setattr(args, key, shielded[value])
    return args


def _shield_dash_values(
    parser: argparse.ArgumentParser, argv: Sequence[str]
) -> tuple[list[str], dict[str, str], argparse.ArgumentParser]:
    """The tokens to parse, what each shield stands for, and the innermost (sub)parser reached."""
    tokens = list(argv)
    shielded: dict[str, str] = {}
    p, slot, i = parser, 0, 0
    while i < len(tokens):
        token = tokens[i]
        if token == "--":  # argparse's own "the rest are values"
            break
        positionals = [a for a in p._actions if not a.option_strings]
        place = positionals[slot] if slot < len(positionals) else None
        option = _option(p, token)
        if option is not None:
            takes_value = option.nargs is None and "=" not in token
            if takes_value and i + 1 < len(tokens) and token.startswith("--"):
                value = tokens[i + 1]
                if value.startswith("-") and value != "--" and _option(p, value) is None:
                    tokens[i : i + 2] = [f"{token}={value}"]
                    i += 1
                    continue
            i += 2 if takes_value else 1
        elif isinstance(place, argparse._SubParsersAction):
            if token not in place.choices:
                break  # argparse says which commands there are
            p, slot, i = place.choices[token], 0, i + 1
        elif token.startswith("-") and len(token) > 1:
            if place is not None and place.dest == "avatar_id" and _may_be_id(token):
                key = f"{_SHIELD}{len(shielded)}"
                shielded[key] = token
                tokens[i] = key
                slot += 1
            i += 1
        else:
            slot += 1 if place is not None and place.nargs in (None, "?") else 0
            i += 1
    return tokens, shielded, p


def _option(parser: argparse.ArgumentParser, token: str) -> argparse.Action | None:
    """The option ``token`` names in ``parser`` (exactly, as ``--opt=value``, or as a unique prefix)."""
    if not token.startswith("-") or token == "-":
        return None
    actions = parser._option_string_actions
    name = token.split("=", 1)[0] if token.startswith("--") else token
    if name in actions:
        return actions[name]
    if token.startswith("--") and parser.allow_abbrev:
        found = {a for s, a in actions.items() if s.startswith("--") and s.startswith(name)}
        if len(found) == 1:
            return found.pop()
    return None


def _may_be_id(token: str) -> bool:
    """A "-abc" is an id where an id goes; a "--abc" only as long as an id (else it is a mistyped option)."""
    return not token.startswith("--") or re.fullmatch(r"[A-Za-z0-9_-]{16,43}", token) is not None


def _unshield(text: str, shielded: dict[str, str]) -> str:
    for key, value in shielded.items():
        text = text.replace(key, value)
    return text


#: What to call an option's value in a message (others are called by their option, e.g. ``--hair-color``).
_TEXT_LABELS = {
    "prompt": "prompt",
    "user": "user name",
    "avatar_id": "avatar id",
    "add": "item to add",
    "remove": "item to remove",
    "expression": "expression",
    "hair_color": "hair colour",
    "eye_color": "eye colour",
    "background": "background",
    "category": "category",
    "out": "--out folder name",
}


def check_text_args(args: argparse.Namespace) -> None:
    """Refuse text that is not valid UTF-8 (argv gives undecodable bytes as surrogates) or holds a NUL, at
    once, before anything is queued: a database cannot store it and a job would fail only at the end."""
    for dest, value in vars(args).items():
        values = value if isinstance(value, list) else [value]
        label = _TEXT_LABELS.get(dest, "--" + dest.replace("_", "-"))
        for v in values:
            if isinstance(v, str):
                check_text(label, v)
            elif isinstance(v, Path) and dest == "out":  # printed on stdout, so it must be text
                check_text(label, str(v))


def check_text(label: str, value: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise BadInput(
            f"the {label} is not valid UTF-8 text.", "Check your terminal's encoding and type it again."
        ) from None
    if "\0" in value:
        raise BadInput(f"the {label} contains a NUL character.", "Remove it and try again.")


def _one_line(text: str) -> str:
    return " ".join(text.split()) if "\n" in text or "\r" in text else text


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
