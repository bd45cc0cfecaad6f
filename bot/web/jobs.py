"""Saves in flight: each editor Save is a queued edit job; its page follows it until the child avatar exists.

A save is known by an unguessable token and only to the user who made it (anyone else gets a 404). The
studio's :meth:`~bot.studio.Studio.finish` runs in a task from the moment of submission, so the avatar is
made and stored even if the page is closed; finished saves are forgotten after :data:`KEEP_S` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from dataclasses import dataclass, field

from bot.errors import UserError
from bot.studio import Pending, Studio
from generation.jobs import ProgressEvent

log = logging.getLogger(__name__)

KEEP_S = 600.0


@dataclass
class Save:
    token: str
    owner: str  # the actor key
    parent: str  # the edited avatar's id
    pending: Pending
    task: asyncio.Task[None] | None = None
    last: ProgressEvent | None = None
    avatar: str | None = None
    error: str | None = None
    finished_at: float | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def state(self) -> dict[str, object]:
        """What the progress page shows: queued (position, eta), running (step), done (avatar) or failed."""
        if self.avatar is not None:
            return {"state": "done", "avatar": self.avatar, "url": f"/a/{self.avatar}?saved=1"}
        if self.error is not None:
            return {"state": "failed", "error": self.error}
        handle = self.pending.handles[0]
        position = handle.position()
        eta = handle.eta_s()
        out: dict[str, object] = {"state": "running" if position == 0 else "queued"}
        if position:
            out["position"] = position
        if eta is not None:
            out["eta_s"] = round(eta, 1)
        if self.last is not None and self.last.step is not None and self.last.total_steps:
            out["step"], out["total_steps"] = self.last.step, self.last.total_steps
        return out


class Saves:
    def __init__(self, studio: Studio) -> None:
        self.studio = studio
        self._saves: dict[str, Save] = {}

    def start(self, owner: str, parent: str, pending: Pending) -> Save:
        self._expire()
        save = Save(secrets.token_urlsafe(16), owner, parent, pending)
        save.task = asyncio.create_task(self._run(save), name=f"web-save-{save.token[:6]}")
        self._saves[save.token] = save
        return save

    def get(self, token: str, owner: str) -> Save | None:
        save = self._saves.get(token)
        return save if save is not None and secrets.compare_digest(save.owner, owner) else None

    async def _run(self, save: Save) -> None:
        follow = asyncio.create_task(self._follow(save))
        try:
            outcome = await self.studio.finish(save.pending)
            if outcome.avatars:
                save.avatar = outcome.avatars[0].id
            else:
                save.error = outcome.failures[0] if outcome.failures else "the avatar could not be made"
        except UserError as exc:
            save.error = str(exc)
        except Exception:
            ref = secrets.token_hex(3)
            log.exception("web save failed (ref %s)", ref)
            save.error = f"something went wrong (ref {ref})"
        finally:
            follow.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await follow
            save.finished_at = time.monotonic()
            save.done.set()

    async def _follow(self, save: Save) -> None:
        async for event in save.pending.handles[0].events():
            save.last = event

    def _expire(self) -> None:
        now = time.monotonic()
        for token, save in list(self._saves.items()):
            if save.finished_at is not None and now - save.finished_at > KEEP_S:
                del self._saves[token]

    async def close(self) -> None:
        tasks = [s.task for s in self._saves.values() if s.task is not None and not s.task.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
