"""The users repository: find or create people, change their settings, forget them.

Every function takes an :class:`AsyncSession`; the caller owns the transaction
(``async with storage.transaction() as s:``). Users are passed as ``User | int`` (:data:`UserRef`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TypedDict, Unpack

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from storage.errors import NotFound
from storage.models import Avatar, Job, User
from storage.refs import INT64_MAX, UserRef, check_text, delete_rows, is_int, uid

__all__ = [
    "ForgetCounts",
    "UserChanges",
    "delete_user_rows",
    "find_user_id",
    "get_or_create_user",
    "get_user",
    "get_user_by_id",
    "update_user",
]

log = logging.getLogger(__name__)


def _identity_filter(discord_id: int | None, console_name: str | None) -> sa.ColumnElement[bool]:
    if (discord_id is None) == (console_name is None):
        raise ValueError("give exactly one of discord_id or console_name")
    if discord_id is not None:
        if not is_int(discord_id) or not 0 < discord_id <= INT64_MAX:
            raise ValueError(f"invalid discord_id {discord_id!r}")
        return User.discord_id == discord_id
    assert console_name is not None
    if (
        not isinstance(console_name, str)
        or not 0 < len(console_name) <= 64
        or console_name != console_name.strip()
    ):
        raise ValueError("console_name must be 1-64 characters without surrounding spaces")
    check_text("console_name", console_name)
    return User.console_name == console_name


async def get_user(
    session: AsyncSession, *, discord_id: int | None = None, console_name: str | None = None
) -> User | None:
    """The user with that Discord id or console name, or None."""
    where = _identity_filter(discord_id, console_name)
    return (await session.scalars(sa.select(User).where(where))).one_or_none()


async def get_user_by_id(session: AsyncSession, user_id: int) -> User | None:
    """Internal lookup by row id (no identity check), or None."""
    return await session.get(User, user_id)


async def find_user_id(
    session: AsyncSession, *, discord_id: int | None = None, console_name: str | None = None
) -> int | None:
    """The row id of the user with this identity, or None (one Core query: the hot path of a submit)."""
    where = _identity_filter(discord_id, console_name)
    found = await session.execute(sa.select(User.__table__.c.id).where(where))
    row = found.first()
    return int(row[0]) if row is not None else None


async def get_or_create_user(
    session: AsyncSession, *, discord_id: int | None = None, console_name: str | None = None
) -> User:
    """Find or create the user; safe when many tasks or processes race to create the same user.

    The insert runs in a SAVEPOINT: if a concurrent transaction inserted the same identity first, the
    unique constraint fires, the savepoint rolls back and the winner's row is read instead.
    """
    where = _identity_filter(discord_id, console_name)
    user = (await session.scalars(sa.select(User).where(where))).one_or_none()
    if user is not None:
        return user
    try:
        async with session.begin_nested():
            user = User(discord_id=discord_id, console_name=console_name)
            session.add(user)
        log.info("created user %d", user.id)
        return user
    except IntegrityError:
        user = (await session.scalars(sa.select(User).where(where))).one_or_none()
        if user is None:
            raise
        log.debug("another transaction created user %d first; using it", user.id)
        return user


class UserChanges(TypedDict, total=False):
    """Settings :func:`update_user` can change; absent keys keep their value."""

    language: str
    default_style: str
    public_results: bool
    consent_store_selfies: bool
    consent_training: bool


async def update_user(session: AsyncSession, user: UserRef, **changes: Unpack[UserChanges]) -> User:
    """Change a user's settings; :class:`NotFound` if the user is gone."""
    row = await session.get(User, uid(user), with_for_update=True)
    if row is None:
        raise NotFound("user not found")
    for name, value in changes.items():
        if name == "language":
            if not isinstance(value, str) or not 2 <= len(value) <= 16:
                raise ValueError(f"invalid language {value!r}")
            check_text(name, value)
        elif name == "default_style":
            if not isinstance(value, str) or not 1 <= len(value) <= 32:
                raise ValueError(f"invalid default_style {value!r}")
            check_text(name, value)
        elif name in ("public_results", "consent_store_selfies", "consent_training"):
            if not isinstance(value, bool):
                raise ValueError(f"{name} must be a bool")
        else:
            raise TypeError(f"unknown user setting {name!r}")
        setattr(row, name, value)
    await session.flush()
    return row


@dataclass(frozen=True, slots=True)
class ForgetCounts:
    users: int
    avatars: int
    jobs: int
    blob_keys: frozenset[str]


async def delete_user_rows(session: AsyncSession, user: UserRef) -> ForgetCounts:
    """Delete the user, their avatars and jobs; return the counts and the blob keys they used.

    The caller deletes the blobs no remaining row points at (see :meth:`storage.Storage.forget_user`),
    and reads the bot messages to remove first (:func:`storage.jobs.messages_for_user`).
    """
    user_id = uid(user)
    keys = frozenset(
        (await session.scalars(sa.select(Avatar.blob_key).where(Avatar.owner_id == user_id))).all()
    )
    n_avatars = await delete_rows(session, sa.delete(Avatar).where(Avatar.owner_id == user_id))
    n_jobs = await delete_rows(session, sa.delete(Job).where(Job.user_id == user_id))
    n_users = await delete_rows(session, sa.delete(User).where(User.id == user_id))
    session.expunge_all()
    return ForgetCounts(users=n_users, avatars=n_avatars, jobs=n_jobs, blob_keys=keys)
