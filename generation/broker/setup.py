"""The broker's streams, consumers and key-value buckets, made by whoever starts first (idempotent).

* ``<PREFIX>_JOBS`` (work queue, file storage): one message per job, subject ``<prefix>.jobs.<engine>.<id>``;
  one durable pull consumer per engine, ``engine-<engine>``, shared by every worker that serves it
  (``ack_wait``, ``max_deliver``);
* ``<PREFIX>_RESULTS`` (work queue, file storage): one message per outcome, subject
  ``<prefix>.results.<owner>.<id>``; one durable pull consumer per bot process, ``results-<owner>``, so a
  restarted bot collects what finished while it was away;
* key-value ``<prefix>_workers`` (presence: one key per live worker, gone ``PRESENCE_TTL_S`` after its
  last heartbeat) and ``<prefix>_cancel`` (one key per cancelled job, kept a day).

File storage everywhere: a broker restart loses nothing.
"""

from __future__ import annotations

import logging
from typing import Any

from generation.broker.config import BrokerConfig, Names

__all__ = [
    "JOBS_MAX_AGE_S",
    "PRESENCE_TTL_S",
    "ensure_engine_consumer",
    "ensure_results_consumer",
    "ensure_streams",
]

log = logging.getLogger(__name__)

#: Jobs and results older than this leave the broker (the SQL record stays; a bot restart sends again).
JOBS_MAX_AGE_S = 7 * 24 * 3600.0
#: A worker's presence key lives this long after its last heartbeat.
PRESENCE_TTL_S = 30.0
CANCEL_TTL_S = 24 * 3600.0
#: JetStream gives up on a job after this many deliveries. Workers apply the job's own ``max_attempts``
#: (the bot's, carried by the job) long before: a job delivered more often fails with a reason.
MAX_DELIVER = 20


async def _stream(js: Any, **config: Any) -> None:
    from nats.js.api import StreamConfig
    from nats.js.errors import BadRequestError

    cfg = StreamConfig(**config)
    try:
        await js.add_stream(cfg)
    except BadRequestError as exc:
        if getattr(exc, "err_code", None) != 10058:  # in use with a different configuration
            raise
        log.info("updating the configuration of stream %s", cfg.name)
        await js.update_stream(cfg)


async def _bucket(js: Any, **config: Any) -> Any:
    from nats.js.api import KeyValueConfig
    from nats.js.errors import BadRequestError

    cfg = KeyValueConfig(**config)
    try:
        return await js.create_key_value(cfg)
    except BadRequestError as exc:
        if getattr(exc, "err_code", None) != 10058:
            raise
        return await js.key_value(cfg.bucket)


async def _work_queue(js: Any, name: str, subject: str) -> None:
    """A work-queue stream on file storage (the jobs, the results): a message leaves once acknowledged."""
    from nats.js.api import RetentionPolicy, StorageType

    await _stream(
        js,
        name=name,
        subjects=[subject],
        retention=RetentionPolicy.WORK_QUEUE,
        storage=StorageType.FILE,
        max_age=JOBS_MAX_AGE_S,
        duplicate_window=120.0,
    )


async def _consumer(
    js: Any,
    stream: str,
    durable: str,
    filter_subject: str,
    *,
    ack_wait_s: float,
    max_deliver: int,
    max_waiting: int | None = None,
    inactive_threshold_s: float | None = None,
) -> str:
    """A durable pull consumer with explicit acks from the start of ``stream`` (made, or updated to these
    settings); returns its name. ``max_deliver=-1``: redelivered without end."""
    from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

    await js.add_consumer(
        stream,
        ConsumerConfig(
            durable_name=durable,
            filter_subject=filter_subject,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=ack_wait_s,
            max_deliver=max_deliver,
            max_ack_pending=10_000,
            max_waiting=max_waiting,
            inactive_threshold=inactive_threshold_s,
        ),
    )
    return durable


async def ensure_streams(js: Any, config: BrokerConfig) -> tuple[Any, Any]:
    """Make (or update) the two streams and the two buckets; returns (workers bucket, cancel bucket)."""
    from nats.js.api import StorageType

    names = config.names
    await _work_queue(js, names.jobs_stream, f"{names.prefix}.jobs.>")
    await _work_queue(js, names.results_stream, f"{names.prefix}.results.>")
    workers = await _bucket(js, bucket=names.workers_bucket, ttl=PRESENCE_TTL_S, storage=StorageType.FILE)
    cancel = await _bucket(js, bucket=names.cancel_bucket, ttl=CANCEL_TTL_S, storage=StorageType.FILE)
    return workers, cancel


async def ensure_engine_consumer(js: Any, names: Names, engine: str, *, ack_wait_s: float) -> str:
    """The engine's shared pull consumer (made, or updated to these settings); returns its name. A job is
    delivered at most ``MAX_DELIVER`` times; up to 512 workers may wait on it at once."""
    return await _consumer(
        js,
        names.jobs_stream,
        names.engine_consumer(engine),
        names.engine_filter(engine),
        ack_wait_s=ack_wait_s,
        max_deliver=MAX_DELIVER,
        max_waiting=512,
    )


async def ensure_results_consumer(
    js: Any, names: Names, owner: str, *, ack_wait_s: float = 30.0, inactive_threshold_s: float | None = None
) -> str:
    """The results consumer of one bot process: an outcome is redelivered until the bot acknowledges it
    (``inactive_threshold_s``: removed that long after its process stops pulling, for short-lived console
    runs)."""
    return await _consumer(
        js,
        names.results_stream,
        names.results_consumer(owner),
        names.owner_filter(owner),
        ack_wait_s=ack_wait_s,
        max_deliver=-1,
        inactive_threshold_s=inactive_threshold_s,
    )
