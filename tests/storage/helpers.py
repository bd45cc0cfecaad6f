"""Small helpers shared by the storage tests."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from storage import Avatar, Job, Storage, User, jobs

P = ParamSpec("P")
T = TypeVar("T")


async def tx(
    storage: Storage,
    step: Callable[Concatenate[AsyncSession, P], Awaitable[T]],
    *args: P.args,
    **kwargs: P.kwargs,
) -> T:
    """Run one repository function (``storage.users``, ``guilds``, ``avatars``, ``jobs``) in a
    transaction of its own: a unit of work of one step, committed on success."""
    async with storage.transaction() as s:
        return await step(s, *args, **kwargs)


def image(n: int) -> bytes:
    """Distinct, deterministic bytes standing in for a PNG (the blob store does not decode images)."""
    return b"\x89PNG\r\n\x1a\n" + f"test image {n}".encode() * 8


async def make_job(storage: Storage, user: User | int, kind: str = "prompt", **fields: Any) -> Job:
    """A queued job, made in its own transaction with :func:`storage.jobs.create_job`."""
    async with storage.transaction() as s:
        return await jobs.create_job(s, user=user, kind=kind, **fields)


async def make_avatar(storage: Storage, owner: User | int, n: int = 0, **overrides: Any) -> Avatar:
    """An avatar made the way the service makes them: a job, claimed, then finished with image ``n``.

    ``kind`` and ``guild_id`` go to the job (the avatar takes them from it); everything else to
    :meth:`Storage.finish_job`.
    """
    kind = overrides.pop("kind", "prompt")
    guild_id = overrides.pop("guild_id", None)
    fields: dict[str, Any] = {
        "seed": 1000 + n,
        "engine": "chibi",
        "width": 512,
        "height": 512,
        "spec": {"hair": "bob", "n": n},
        "prompt": f"cat ears number {n}",
    }
    fields.update(overrides)
    job = await make_job(storage, owner, kind, request={"prompt": fields["prompt"]}, guild_id=guild_id)
    await tx(storage, jobs.mark_running, job.id)
    avatar, _ = await storage.finish_job(job.id, image(n), **fields)
    return avatar
