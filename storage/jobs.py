"""The jobs repository: creation, the status transition table, recovery queries and delivery.

Every function takes an :class:`AsyncSession`; the caller owns the transaction
(``async with storage.transaction() as s:``), so several calls can share one unit of work.

A job's life is queued -> running -> done | failed | cancelled (:data:`TRANSITIONS`), and then
*delivered*: :func:`mark_delivered` records that Discord accepted the final message, with the ids of the
bot messages that show the result (kept so that delete and ``/forget`` can remove them). Jobs whose user
is to be told (``deliver_user_id`` set) and that are finished but not delivered are what
:func:`undelivered` lists after a restart.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from storage.errors import InvalidTransition, NotFound
from storage.models import Avatar, AvatarKind, Job, JobStatus, utcnow
from storage.refs import INT64_MAX, UserRef, check_json_text, check_text, is_int, uid

__all__ = [
    "FINAL",
    "MAX_ERROR_LEN",
    "TRANSITIONS",
    "Message",
    "add_messages",
    "count_jobs_since",
    "count_unfinished_rows",
    "create_job",
    "create_jobs",
    "get_job_by_id",
    "insert_jobs",
    "job_values",
    "mark_cancelled",
    "mark_delivered",
    "mark_done",
    "mark_failed",
    "mark_running",
    "mark_running_many",
    "mark_running_rows",
    "messages_for_avatars",
    "messages_for_user",
    "requeue",
    "transition",
    "undelivered",
    "unfinished_jobs",
]

log = logging.getLogger(__name__)

#: A bot message that shows a job's result: ``(channel_id, message_id)``.
Message = tuple[int, int]

MAX_ERROR_LEN = 2000
MAX_GROUP_LEN = 32

#: Allowed job status changes. Terminal states (done, failed, cancelled) have no way out.
#: ``running -> queued`` exists only for recovery after a crash (:func:`requeue`).
TRANSITIONS: Mapping[JobStatus, frozenset[JobStatus]] = {
    JobStatus.QUEUED: frozenset({JobStatus.RUNNING, JobStatus.FAILED, JobStatus.CANCELLED}),
    JobStatus.RUNNING: frozenset({JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.QUEUED}),
    JobStatus.DONE: frozenset(),
    JobStatus.FAILED: frozenset(),
    JobStatus.CANCELLED: frozenset(),
}

_SOURCES: Mapping[JobStatus, tuple[JobStatus, ...]] = {
    target: tuple(src for src, targets in TRANSITIONS.items() if target in targets) for target in JobStatus
}

_ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING)

# The hot statements of the job store (storage.jobstore), built once: building a statement costs about
# as much as running it on SQLite.
_JOBS = cast(sa.Table, Job.__table__)
_INSERT_JOBS = sa.insert(_JOBS).returning(_JOBS.c.id, sort_by_parameter_order=True)
_MARK_RUNNING = (
    sa.update(_JOBS)
    .where(
        _JOBS.c.id.in_(sa.bindparam("ids", expanding=True)), _JOBS.c.status.in_(_SOURCES[JobStatus.RUNNING])
    )
    .values(
        status=JobStatus.RUNNING,
        updated_at=sa.bindparam("now_u"),
        started_at=sa.bindparam("now_s"),
        error=None,
    )
    .returning(_JOBS.c.id)
)
_STATUS_OF = sa.select(_JOBS.c.id, _JOBS.c.status).where(_JOBS.c.id.in_(sa.bindparam("ids", expanding=True)))

_COUNT_ACTIVE = sa.select(sa.func.count()).select_from(_JOBS).where(_JOBS.c.status.in_(_ACTIVE))
_COUNT_ACTIVE_OF = (
    sa.select(sa.func.count().filter(_JOBS.c.user_id == sa.bindparam("user")), sa.func.count())
    .select_from(_JOBS)
    .where(_JOBS.c.status.in_(_ACTIVE))
)

#: The states a job ends in; only these can be marked delivered.
FINAL = (JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED)


def _check_snowflake(name: str, value: int | None) -> None:
    if value is not None and (not is_int(value) or not 0 < value <= INT64_MAX):
        raise ValueError(f"invalid {name} {value!r}")


async def create_job(
    session: AsyncSession,
    *,
    user: UserRef,
    kind: AvatarKind | str,
    request: Mapping[str, Any] | None = None,
    guild_id: int | None = None,
    channel_id: int | None = None,
    interaction_token: str | None = None,
    token_expires_at: datetime | None = None,
    deliver_user_id: int | None = None,
    request_group: str | None = None,
) -> Job:
    """A new job in status ``queued``. ``request`` (JSON) holds what the worker needs to redo it.

    ``deliver_user_id`` is the Discord user the result goes to (None: nobody is told, e.g. the
    console); ``request_group`` ties the jobs of one request together. Text with a NUL byte or that is
    not valid UTF-8 (anywhere in ``request``, the token or the group) raises ValueError before any SQL
    runs: PostgreSQL would refuse it, SQLite would store it.
    """
    job = Job(
        **job_values(
            user=user,
            kind=kind,
            request=request,
            guild_id=guild_id,
            channel_id=channel_id,
            interaction_token=interaction_token,
            token_expires_at=token_expires_at,
            deliver_user_id=deliver_user_id,
            request_group=request_group,
        ),
        messages=[],
    )
    session.add(job)
    await session.flush()
    log.debug("created job %d (%s) for user %d", job.id, job.kind, job.user_id)
    return job


def job_values(
    *,
    user: UserRef,
    kind: AvatarKind | str,
    request: Mapping[str, Any] | None = None,
    guild_id: int | None = None,
    channel_id: int | None = None,
    interaction_token: str | None = None,
    token_expires_at: datetime | None = None,
    deliver_user_id: int | None = None,
    request_group: str | None = None,
) -> dict[str, Any]:
    """The checked column values of a new queued job (see :func:`create_job`); no SQL."""
    request_dict = dict(request or {})
    json.dumps(request_dict)
    check_json_text("request", request_dict)
    check_text("interaction_token", interaction_token)
    for name, value in (
        ("guild_id", guild_id),
        ("channel_id", channel_id),
        ("deliver_user_id", deliver_user_id),
    ):
        _check_snowflake(name, value)
    if request_group is not None:
        if not isinstance(request_group, str) or not 1 <= len(request_group) <= MAX_GROUP_LEN:
            raise ValueError(f"request_group must be 1-{MAX_GROUP_LEN} characters")
        check_text("request_group", request_group)
    return {
        "user_id": uid(user),
        "kind": AvatarKind(kind),
        "status": JobStatus.QUEUED,
        "request": request_dict,
        "guild_id": guild_id,
        "channel_id": channel_id,
        "interaction_token": interaction_token,
        "token_expires_at": token_expires_at,
        "deliver_user_id": deliver_user_id,
        "request_group": request_group,
    }


async def create_jobs(session: AsyncSession, rows: Sequence[Mapping[str, Any]]) -> list[int]:
    """Insert several new jobs (each the :func:`job_values` of one) in ONE statement; their ids, in
    order. The lean path of the generation service's submissions (no ORM objects)."""
    if not rows:
        return []
    table = cast(sa.Table, Job.__table__)
    result = await session.execute(
        sa.insert(table).returning(table.c.id, sort_by_parameter_order=True),
        [{**row, "messages": []} for row in rows],
    )
    ids = [int(r[0]) for r in result.all()]
    log.debug("created jobs %s", ids)
    return ids


def insert_jobs(conn: sa.Connection, rows: Sequence[Mapping[str, Any]]) -> list[int]:
    """:func:`create_jobs` on a synchronous Core connection (the job store runs its hot transactions in
    one call on the database's own thread: :mod:`storage.jobstore`)."""
    if not rows:
        return []
    result = conn.execute(_INSERT_JOBS, [{**row, "messages": []} for row in rows])
    ids = [int(r[0]) for r in result.all()]
    log.debug("created jobs %s", ids)
    return ids


async def get_job_by_id(session: AsyncSession, job_id: int) -> Job:
    """Internal lookup by row id (for the generation service); :class:`NotFound` if it is gone."""
    job = await session.get(Job, job_id, populate_existing=True)
    if job is None:
        raise NotFound("job not found")
    return job


async def transition(
    session: AsyncSession,
    job_id: int,
    target: JobStatus,
    *,
    extra_where: Sequence[sa.ColumnElement[bool]] = (),
    **values: Any,
) -> Job:
    """Move job ``job_id`` to ``target`` if :data:`TRANSITIONS` allows it from its current status.

    A single conditional ``UPDATE ... WHERE status IN (allowed sources)`` does the check and the change,
    so of two concurrent writers exactly one wins; the other gets :class:`InvalidTransition`.
    """
    target = JobStatus(target)
    now = utcnow()
    stmt = (
        sa.update(Job)
        .where(Job.id == job_id, Job.status.in_(_SOURCES[target]), *extra_where)
        .values(status=target, updated_at=now, **values)
        .returning(Job)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    job = (await session.scalars(stmt)).one_or_none()
    if job is not None:
        log.debug("job %d -> %s", job_id, target)
        return job
    current = await session.scalar(sa.select(Job.status).where(Job.id == job_id))
    if current is None:
        raise NotFound("job not found")
    if extra_where and current in _SOURCES[target]:
        # The status was fine, so an extra condition failed (the avatar of mark_done).
        raise NotFound("avatar not found")
    raise InvalidTransition(job_id, str(current), str(target))


async def mark_running(session: AsyncSession, job_id: int) -> Job:
    """queued -> running; sets ``started_at``."""
    return await transition(session, job_id, JobStatus.RUNNING, started_at=utcnow(), error=None)


async def mark_running_many(session: AsyncSession, job_ids: Sequence[int]) -> list[Exception | None]:
    """queued -> running for several jobs in ONE statement (the jobs of a batch); one entry per job, in
    order: None if it changed, else the :class:`InvalidTransition` (with the status it has) or
    :class:`NotFound` that :func:`mark_running` would have raised for it alone."""
    ids = _job_ids(job_ids)
    if not ids:
        return []
    now = utcnow()
    stmt = (
        sa.update(Job)
        .where(Job.id.in_(ids), Job.status.in_(_SOURCES[JobStatus.RUNNING]))
        .values(status=JobStatus.RUNNING, updated_at=now, started_at=now, error=None)
        .returning(Job.id)
        .execution_options(synchronize_session=False)
    )
    changed = set((await session.scalars(stmt)).all())
    refused = [i for i in ids if i not in changed]
    current: dict[int, Any] = {}
    if refused:
        rows = await session.execute(sa.select(Job.id, Job.status).where(Job.id.in_(refused)))
        current = {row[0]: row[1] for row in rows.all()}
    return _running_answers(job_ids, changed, current)


def _running_answers(
    job_ids: Sequence[int], changed: set[int], current: Mapping[int, Any]
) -> list[Exception | None]:
    """Per job, in order: None when it was marked running, else why not (its status, or not found)."""
    log.debug("jobs %s -> running", sorted(changed))
    return [
        None
        if job_id in changed
        else InvalidTransition(job_id, str(current[job_id]), str(JobStatus.RUNNING))
        if job_id in current
        else NotFound("job not found")
        for job_id in job_ids
    ]


def mark_running_rows(conn: sa.Connection, job_ids: Sequence[int]) -> list[Exception | None]:
    """:func:`mark_running_many` on a synchronous Core connection (see :func:`insert_jobs`)."""
    ids = _job_ids(job_ids)
    if not ids:
        return []
    now = utcnow()
    changed = set(conn.execute(_MARK_RUNNING, {"ids": ids, "now_u": now, "now_s": now}).scalars().all())
    refused = [i for i in ids if i not in changed]
    current: dict[int, Any] = {}
    if refused:
        current = {row[0]: row[1] for row in conn.execute(_STATUS_OF, {"ids": refused}).all()}
    return _running_answers(job_ids, changed, current)


async def mark_done(session: AsyncSession, job_id: int, avatar_id: int) -> Job:
    """running -> done with the avatar it made (which must belong to the job's user)."""
    owner_matches = Job.user_id == sa.select(Avatar.owner_id).where(Avatar.id == avatar_id).scalar_subquery()
    return await transition(
        session,
        job_id,
        JobStatus.DONE,
        extra_where=(owner_matches,),
        avatar_id=avatar_id,
        finished_at=utcnow(),
        error=None,
    )


def _storable(error: object) -> str:
    """``error`` as text any database keeps: NUL bytes and lone surrogates become U+FFFD."""
    text = str(error)[:MAX_ERROR_LEN]
    return "".join("\ufffd" if c == "\x00" or "\ud800" <= c <= "\udfff" else c for c in text)


async def mark_failed(session: AsyncSession, job_id: int, error: str) -> Job:
    """queued/running -> failed, with a short, user-safe error text. A job already done stays done
    (:class:`InvalidTransition`): a user told "done" is never told "failed" later."""
    return await transition(session, job_id, JobStatus.FAILED, error=_storable(error), finished_at=utcnow())


async def mark_cancelled(session: AsyncSession, job_id: int) -> Job:
    """queued/running -> cancelled."""
    return await transition(session, job_id, JobStatus.CANCELLED, finished_at=utcnow())


async def requeue(session: AsyncSession, job_id: int) -> Job:
    """running -> queued, for recovery after a crash; counts the attempt."""
    return await transition(session, job_id, JobStatus.QUEUED, attempts=Job.attempts + 1, started_at=None)


async def unfinished_jobs(session: AsyncSession) -> list[Job]:
    """Every queued or running job, oldest first: what to resume after a restart."""
    stmt = sa.select(Job).where(Job.status.in_(_ACTIVE)).order_by(Job.created_at, Job.id)
    return list((await session.scalars(stmt)).all())


async def count_unfinished(session: AsyncSession, user: UserRef | None = None) -> tuple[int, int]:
    """(the user's queued + running jobs, everyone's) in one query: the queue caps, counted across every
    process that shares the database (several bot processes behind one broker). ``user`` None: (0, all)."""
    active = Job.status.in_(_ACTIVE)
    mine = sa.func.count().filter(Job.user_id == uid(user)) if user is not None else sa.literal(0)
    row = (await session.execute(sa.select(mine, sa.func.count()).select_from(Job).where(active))).one()
    return int(row[0] or 0), int(row[1] or 0)


def count_unfinished_rows(conn: sa.Connection, user_id: int | None) -> tuple[int, int]:
    """:func:`count_unfinished` on a synchronous Core connection (see :func:`insert_jobs`)."""
    if user_id is None:
        return 0, int(conn.execute(_COUNT_ACTIVE).scalar_one() or 0)
    row = conn.execute(_COUNT_ACTIVE_OF, {"user": user_id}).one()
    return int(row[0] or 0), int(row[1] or 0)


async def count_jobs_since(
    session: AsyncSession,
    user: UserRef,
    since: datetime,
    *,
    guild_id: int | None = None,
    statuses: Iterable[JobStatus] | None = None,
) -> int:
    """How many jobs the user created at or after ``since`` (optionally in one guild / with some statuses).

    For daily limits, e.g. ``statuses=(queued, running, done)`` to not count failures.
    """
    stmt = (
        sa.select(sa.func.count()).select_from(Job).where(Job.user_id == uid(user), Job.created_at >= since)
    )
    if guild_id is not None:
        stmt = stmt.where(Job.guild_id == guild_id)
    if statuses is not None:
        stmt = stmt.where(Job.status.in_([JobStatus(s) for s in statuses]))
    return (await session.scalar(stmt)) or 0


# -- delivery ---------------------------------------------------------------------------------------


def _messages(messages: Iterable[Sequence[int]]) -> list[Message]:
    """Validated ``(channel_id, message_id)`` pairs, in order, without repeats."""
    out: list[Message] = []
    for pair in messages:
        if isinstance(pair, str | bytes) or len(pair) != 2:
            raise ValueError(f"a message is a (channel_id, message_id) pair, got {pair!r}")
        channel_id, message_id = pair
        for value in (channel_id, message_id):
            if not is_int(value) or not 0 < value <= INT64_MAX:
                raise ValueError(f"invalid message reference {pair!r}")
        if (channel_id, message_id) not in out:
            out.append((channel_id, message_id))
    return out


def _job_ids(job_ids: Iterable[int]) -> list[int]:
    ids = list(dict.fromkeys(job_ids))
    if not all(is_int(i) for i in ids):
        raise TypeError("job ids are ints")
    return ids


def _merged(stored: Sequence[Sequence[int]] | None, new: Sequence[Message]) -> list[list[int]]:
    merged = _messages(stored or [])
    merged += [m for m in new if m not in merged]
    return [[c, m] for c, m in merged]


async def _append(
    session: AsyncSession,
    job_ids: Sequence[int],
    messages: Sequence[Message],
    where: Sequence[sa.ColumnElement[bool]],
    **values: Any,
) -> int:
    """Append ``messages`` to each job matching ``where`` (one conditional UPDATE per job), setting
    ``values`` too; return how many jobs changed. The rows are locked first (PostgreSQL ``FOR UPDATE``;
    a SQLite transaction holds the write lock anyway), so concurrent appends never lose a message."""
    if not job_ids:
        return 0
    rows = await session.execute(
        sa.select(Job.id, Job.messages).where(Job.id.in_(job_ids), *where).order_by(Job.id).with_for_update()
    )
    changed = 0
    now = utcnow()
    for job_id, stored in rows.all():
        result = await session.execute(
            sa.update(Job)
            .where(Job.id == job_id, *where)
            .values(messages=_merged(stored, messages), updated_at=now, **values)
            .execution_options(synchronize_session=False)
        )
        changed += result.rowcount  # type: ignore[attr-defined]
    return changed


async def mark_delivered(
    session: AsyncSession, job_ids: Sequence[int], messages: Sequence[Sequence[int]] = ()
) -> int:
    """Record that Discord accepted the final message of these jobs: set ``delivered_at``, drop the
    interaction token (no longer needed, and a credential) and append ``messages``.

    Only jobs in a final state (done, failed, cancelled) that are not delivered yet change; the
    return value says how many did. Calling it again changes nothing (idempotent).
    """
    ids = _job_ids(job_ids)
    pairs = _messages(messages)
    where = (Job.status.in_(FINAL), Job.delivered_at.is_(None))
    changed = await _append(session, ids, pairs, where, delivered_at=utcnow(), interaction_token=None)
    log.debug("marked %d of %d jobs delivered", changed, len(ids))
    return changed


async def add_messages(
    session: AsyncSession, job_ids: Sequence[int], messages: Sequence[Sequence[int]]
) -> int:
    """Append bot messages (a progress message, a pointer to where the result went) to these jobs,
    without marking them delivered. Messages a job already lists are not added twice. Returns how many
    jobs exist among ``job_ids``."""
    return await _append(session, _job_ids(job_ids), _messages(messages), ())


async def undelivered(session: AsyncSession) -> list[Job]:
    """Done or failed jobs with a user to tell that are not delivered yet, oldest first: what to
    deliver after a restart. Console jobs (no ``deliver_user_id``) never appear."""
    stmt = (
        sa.select(Job)
        .where(
            Job.status.in_((JobStatus.DONE, JobStatus.FAILED)),
            Job.deliver_user_id.is_not(None),
            Job.delivered_at.is_(None),
        )
        .order_by(Job.created_at, Job.id)
    )
    return list((await session.scalars(stmt)).all())


async def _collect(session: AsyncSession, where: sa.ColumnElement[bool]) -> list[Message]:
    stored = (await session.scalars(sa.select(Job.messages).where(where).order_by(Job.id))).all()
    out: list[Message] = []
    for messages in stored:
        for pair in _messages(messages or []):
            if pair not in out:
                out.append(pair)
    return out


async def messages_for_avatars(session: AsyncSession, avatar_ids: Sequence[int]) -> list[Message]:
    """The bot messages of the jobs that made these avatars (by row id; no owner check), without
    repeats. A grid message shared by the jobs of one request appears once."""
    ids = _job_ids(avatar_ids)
    if not ids:
        return []
    return await _collect(session, Job.avatar_id.in_(ids))


async def request_mates(session: AsyncSession, avatar_id: int) -> list[tuple[int, list[Message]]]:
    """The other avatars of the request that made this one (one grid is one request), in job order, each
    with the bot messages its job lists. Deleted avatars and ownership are the caller's to check."""
    group = sa.select(Job.request_group).where(Job.avatar_id == avatar_id, Job.request_group.is_not(None))
    rows = await session.execute(
        sa.select(Job.avatar_id, Job.messages)
        .where(Job.request_group.in_(group), Job.avatar_id.is_not(None), Job.avatar_id != avatar_id)
        .order_by(Job.id)
    )
    return [
        (int(mate), [(int(channel), int(message)) for channel, message in shown_on or []])
        for mate, shown_on in rows.all()
        if mate is not None
    ]


async def messages_for_user(session: AsyncSession, user: UserRef) -> list[Message]:
    """Every bot message of every job of this user, without repeats (read before ``/forget`` deletes
    the rows)."""
    return await _collect(session, Job.user_id == uid(user))
