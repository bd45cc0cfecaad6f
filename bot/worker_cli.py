"""``chibify worker`` and ``chibify workers``: a generation worker for the broker, and the list of live ones.

Neither opens the database nor needs a Discord token: a worker on a rented GPU box is given
``CHIBIFY_BROKER_URL`` (and its engine settings) and nothing else.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import re
import signal
import sys
import time
from typing import Any

from bot.errors import BadInput, Unavailable
from bot.settings import Settings
from generation.broker.config import BrokerConfig, BrokerUnavailable

log = logging.getLogger(__name__)

NO_BROKER = (
    "no broker is configured.",
    "Set CHIBIFY_BROKER_URL to your NATS server (e.g. nats://gpu-box:4222); see docs/scaling.md.",
)


def add_parsers(sub: Any) -> None:
    w = sub.add_parser(
        "worker",
        help="draw for the bots of a broker (CHIBIFY_BROKER_URL): no database, no Discord token needed",
        description="Run a generation worker: connect to the broker, load the engines once, and draw the jobs "
        "any bot sends. SIGTERM or Ctrl-C: finish the batch in hand, then exit.",
    )
    w.add_argument(
        "--engines",
        metavar="LIST",
        help="comma-separated engines to serve, e.g. chibi,diffusion (default: chibi, plus CHIBIFY_ENGINE)",
    )
    w.add_argument(
        "--max-batch",
        type=int,
        metavar="N",
        help="most jobs drawn in one go, 1-64 (default: CHIBIFY_BATCH_MAX)",
    )
    w.add_argument("--id", dest="worker_id", metavar="NAME", help="this worker's name (default: host-pid)")
    ws = sub.add_parser("workers", help="list the live workers of the broker (CHIBIFY_BROKER_URL)")
    ws.add_argument("--json", action="store_true", help="print one JSON object per worker")


def _broker(settings: Settings) -> BrokerConfig:
    try:
        broker = settings.broker()
    except ValueError as exc:
        raise Unavailable(f"bad broker setting: {exc}.", "Check CHIBIFY_BROKER_*.") from None
    if broker is None:
        raise Unavailable(*NO_BROKER)
    return broker


def worker_engines(raw: str | None, settings: Settings) -> tuple[Any, ...]:
    from bot.app import engine_spec_for
    from generation.broker.config import check_name
    from generation.engines import engine_spec

    # commas inside "name(key=value,...)" belong to the options
    names = (
        [n.strip() for n in re.split(r",(?![^()]*\))", raw)]
        if raw is not None
        else ["chibi", settings.engine]
    )
    if not any(names):
        raise BadInput("--engines is empty.", "Name at least one engine, e.g. --engines chibi.")
    specs: list[Any] = []
    for name in dict.fromkeys(n for n in names if n):
        try:
            spec = engine_spec(engine_spec_for(name, settings))
            check_name("engine name", spec.name)
        except ValueError as exc:
            raise BadInput(f"{exc}.", "See `chibify worker --help`.") from None
        specs.append(spec)
    return tuple(specs)


async def run_worker(args: argparse.Namespace, settings: Settings) -> int:
    from generation.broker.agent import WorkerAgent
    from generation.worker import WorkerStartError

    broker = _broker(settings)
    max_batch = args.max_batch if args.max_batch is not None else settings.batch_max
    if not 1 <= max_batch <= 64:
        raise BadInput(f"--max-batch {max_batch} is out of range.", "Use 1 to 64.")
    engines = worker_engines(args.engines, settings)
    logging.getLogger().setLevel(logging.DEBUG if args.verbose else settings.log_level)
    try:
        agent = WorkerAgent(
            broker,
            engines,
            max_batch=max_batch,
            worker_id=args.worker_id,
            start_timeout_s=120.0 if all(s.name == "chibi" for s in engines) else 900.0,
            default_timeout_s=settings.job_timeout_s,
        )
    except ValueError as exc:
        raise BadInput(f"{exc}.", "See `chibify worker --help`.") from None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await agent.run(stop)
    except BrokerUnavailable as exc:
        raise Unavailable(
            f"{exc}.", "Check CHIBIFY_BROKER_URL and that NATS runs with JetStream (-js)."
        ) from None
    except WorkerStartError as exc:
        raise Unavailable(f"the engines could not start: {exc}.", "Check the engine settings.") from None
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    return 0


async def list_workers(broker: BrokerConfig) -> list[Any]:
    """The live workers as the presence bucket has them (each key lives a while after its last heartbeat;
    a worker silent for three heartbeats is left out)."""
    from nats.js.errors import KeyNotFoundError, NoKeysError

    from generation.broker.config import connect
    from generation.broker.setup import ensure_streams
    from generation.broker.wire import WireError, decode_presence

    nc = await connect(broker, name="chibify-workers")
    try:
        workers_kv, _ = await ensure_streams(nc.jetstream(timeout=10.0), broker)
        try:
            keys = await workers_kv.keys()
        except NoKeysError:
            keys = []
        found = []
        for key in keys:
            try:
                entry = await workers_kv.get(key)
                presence = decode_presence(entry.value or b"")
            except (KeyNotFoundError, WireError):
                continue
            if not presence.gone and time.time() - presence.info.last_seen <= 3 * presence.heartbeat_s + 1.0:
                found.append(presence.info)
        return sorted(found, key=lambda i: i.worker_id)
    finally:
        await nc.close()


def describe_age(seconds: float) -> str:
    return "just now" if seconds < 1.5 else f"{seconds:.0f} s ago"


async def run_workers(args: argparse.Namespace, settings: Settings) -> int:
    broker = _broker(settings)
    try:
        workers = await list_workers(broker)
    except BrokerUnavailable as exc:
        raise Unavailable(f"{exc}.", "Check CHIBIFY_BROKER_URL.") from None
    if args.json:
        for info in workers:
            print(json.dumps(info.to_json(), ensure_ascii=False))
        return 0
    if not workers:
        print(f"no live workers at {broker.shown_url}. Start one with: chibify worker")
        return 0
    now = time.time()
    rows = [("ID", "HOST", "ENGINES", "MODELS", "STATE", "SERVED", "LAST SEEN")]
    for info in workers:
        models = ",".join(f"{e}={m}" for e, m in info.models) or "-"
        rows.append(
            (
                info.worker_id,
                info.host,
                ",".join(info.engines),
                models,
                info.state,
                str(info.jobs_served),
                describe_age(now - info.last_seen),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    sys.stdout.flush()
    return 0
