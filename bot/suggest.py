"""Autocomplete answers from a small per-user cache, within a hard time budget.

Discord gives an autocomplete answer 3 seconds and it cannot be deferred; a slow database must not turn
into "Loading options failed". So each user's recent avatars (ids, prompts, items) are kept for
``ttl_s``; a miss starts one load in the background and waits for it at most ``budget_s``. When the load
is late the answer is what the cache had (possibly nothing) and the next keystroke gets the fresh list.
New, deleted and forgotten avatars drop the user's entry (:meth:`Suggestions.forget`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.studio import Actor, AvatarView, Studio

log = logging.getLogger(__name__)

RECENT = 50  # avatars kept per user


@dataclass(frozen=True)
class Recent:
    """What autocomplete needs of one avatar."""

    id: str
    label: str  # prompt (or kind)
    items: tuple[str, ...]

    @classmethod
    def of(cls, avatar: AvatarView) -> Recent:
        items = avatar.spec.get("items") or ()
        return cls(avatar.id, avatar.prompt or avatar.kind, tuple(str(i) for i in items))


class Suggestions:
    def __init__(self, studio: Studio, *, ttl_s: float = 60.0, budget_s: float = 1.5) -> None:
        self.studio = studio
        self.ttl_s = ttl_s
        self.budget_s = budget_s
        self._cache: dict[int, tuple[float, list[Recent]]] = {}
        self._loading: dict[int, asyncio.Task[list[Recent]]] = {}

    async def recent(self, actor: Actor) -> list[Recent]:
        """The user's recent avatars, newest first: cached, or loaded within the budget, or what the cache
        had when the load is late (``[]`` when it had nothing)."""
        key = actor.discord_id
        assert key is not None, "autocomplete serves Discord users"
        entry = self._cache.get(key)
        if entry is not None and time.monotonic() - entry[0] < self.ttl_s:
            return entry[1]
        task = self._loading.get(key)
        if task is None:
            task = asyncio.create_task(self._load(key, actor), name=f"suggestions-{key}")
            task.add_done_callback(lambda done: done.cancelled() or done.exception())
            self._loading[key] = task
        try:
            return await asyncio.wait_for(asyncio.shield(task), self.budget_s)
        except TimeoutError:
            log.info("autocomplete for user %s answered from the cache: the database was slow", key)
            return entry[1] if entry is not None else []
        except Exception:
            log.warning("autocomplete for user %s could not read the history", key, exc_info=True)
            return entry[1] if entry is not None else []

    def forget(self, user_id: int) -> None:
        """The user's avatars changed: the next autocomplete reads them afresh."""
        self._cache.pop(user_id, None)

    def cached(self, user_id: int) -> bool:
        return user_id in self._cache

    async def _load(self, key: int, actor: Actor) -> list[Recent]:
        try:
            avatars = await self.studio.recent_avatars(actor, "", limit=RECENT)
            found = [Recent.of(a) for a in avatars]
            self._cache[key] = (time.monotonic(), found)
            return found
        finally:
            self._loading.pop(key, None)


def matching(recent: list[Recent], current: str, limit: int = 25) -> list[Recent]:
    """The avatars whose id or prompt contains what was typed (all when nothing was)."""
    needle = current.strip().lower()
    found = [r for r in recent if not needle or needle in r.id.lower() or needle in r.label.lower()]
    return found[:limit]
