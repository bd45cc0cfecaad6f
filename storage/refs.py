"""Small helpers the repository modules share: user references, argument checks and bulk deletes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import User

__all__ = [
    "INT64_MAX",
    "MAX_PUBLIC_ID_LEN",
    "UserRef",
    "check_json_text",
    "check_text",
    "delete_rows",
    "is_int",
    "uid",
    "valid_public_id",
]

#: Owners and users are passed as a :class:`~storage.models.User` or its row id.
UserRef = User | int

MAX_PUBLIC_ID_LEN = 64
INT64_MAX = 2**63 - 1


def uid(user: UserRef) -> int:
    """The row id of ``user``; TypeError for anything that is not a User or an int."""
    if isinstance(user, User):
        return user.id
    if isinstance(user, bool) or not isinstance(user, int):
        raise TypeError(f"expected a User or a user id, got {type(user).__name__}")
    return user


def is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def valid_public_id(public_id: object) -> bool:
    return isinstance(public_id, str) and 0 < len(public_id) <= MAX_PUBLIC_ID_LEN


def check_text(name: str, value: str | None) -> None:
    """Refuse text no database stores the same way: a NUL byte (PostgreSQL rejects it, SQLite keeps
    it) or a lone surrogate (not encodable as UTF-8). Raises ValueError before any SQL runs."""
    if value is None:
        return
    if "\x00" in value:
        raise ValueError(f"{name}: text contains a NUL byte")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{name}: text is not valid UTF-8") from None


def check_json_text(name: str, value: Any) -> None:
    """:func:`check_text` for every string (keys included) inside a JSON value."""
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            check_text(name, item)
        elif isinstance(item, Mapping):
            for key, inner in item.items():
                if isinstance(key, str):
                    check_text(name, key)
                stack.append(inner)
        elif isinstance(item, list | tuple):
            stack.extend(item)


async def delete_rows(session: AsyncSession, stmt: sa.Delete) -> int:
    """Run a bulk DELETE and return how many rows it removed."""
    result = await session.execute(stmt.execution_options(synchronize_session=False))
    return cast("sa.CursorResult[Any]", result).rowcount
