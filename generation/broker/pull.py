"""A pull-consumer client that returns as soon as there is work.

``fetch(n)`` of the stock client waits for ``n`` messages or its whole timeout once one arrived; a worker
must start on the first job at once and take only what is already there besides. :class:`Puller` speaks
JetStream's pull protocol directly (``$JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>``):

* :meth:`Puller.wait_one` sends a lingering request for one message (``expires``) and returns it the
  moment it arrives (or [] when the request expired);
* :meth:`Puller.take` sends a ``no_wait`` request for up to ``n`` and returns what is there now.

One request is open at a time. Data messages arrive under their own subject (not the reply subject), so
every data message goes to the open request; status messages (no messages, expired) are matched by their
reply subject. A message that arrives when no request is open (a request given up on, a broker restart)
is kept and handed out by the next call, never lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
from typing import Any

__all__ = ["Puller"]

log = logging.getLogger(__name__)

_TERMINAL = {"404", "408", "409"}  # no messages / request expired / consumer gone or server shutdown


class Puller:
    def __init__(self, nc: Any, stream: str, consumer: str, *, api_prefix: str = "$JS.API") -> None:
        self._nc = nc
        self._next = f"{api_prefix}.CONSUMER.MSG.NEXT.{stream}.{consumer}"
        self._inbox = nc.new_inbox()
        self._ids = itertools.count(1)
        self._open: tuple[str, asyncio.Queue[Any]] | None = None
        self._lock = asyncio.Lock()
        self._backlog: list[Any] = []
        self._sub: Any = None
        self.consumer = consumer

    async def start(self) -> None:
        self._sub = await self._nc.subscribe(f"{self._inbox}.*", cb=self._on_message)

    async def stop(self) -> None:
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None

    async def _on_message(self, msg: Any) -> None:
        status = msg.headers.get("Status") if msg.headers else None
        current = self._open
        if status:
            if current is not None and current[0] == msg.subject:
                current[1].put_nowait(msg)
        elif current is not None:
            current[1].put_nowait(msg)
        else:
            self._backlog.append(msg)  # for a request given up on: the next call hands it out

    def _take_backlog(self, n: int) -> list[Any]:
        out, self._backlog = self._backlog[:n], self._backlog[n:]
        return out

    async def _request(self, body: dict[str, Any], want: int, wait_s: float) -> list[Any]:
        async with self._lock:
            return await self._request_locked(body, want, wait_s)

    async def _request_locked(self, body: dict[str, Any], want: int, wait_s: float) -> list[Any]:
        subject = f"{self._inbox}.{next(self._ids)}"
        queue: asyncio.Queue[Any] = asyncio.Queue()
        self._open = (subject, queue)
        got: list[Any] = []
        cancelled = False
        try:
            await self._nc.publish(self._next, json.dumps(body).encode(), reply=subject)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + wait_s
            while len(got) < want:
                left = deadline - loop.time()
                if left <= 0:
                    break
                try:
                    msg = await asyncio.wait_for(queue.get(), left)
                except TimeoutError:
                    break
                status = msg.headers.get("Status") if msg.headers else None
                if status is None:
                    got.append(msg)
                elif status in _TERMINAL:
                    break
                # "100" idle heartbeats and anything else: keep waiting
        except asyncio.CancelledError:
            cancelled = True
            raise
        finally:
            self._open = None
            # Whatever came after we stopped listening goes to the backlog (see _on_message).
            while not queue.empty():
                msg = queue.get_nowait()
                if not (msg.headers and msg.headers.get("Status")):
                    got.append(msg)
            if cancelled:  # the caller is gone: keep what arrived for the next call
                self._backlog.extend(got)
        return got

    def drop_backlog(self) -> list[Any]:
        """The messages received but not handed out (to give back at shutdown)."""
        out, self._backlog = self._backlog, []
        return out

    async def wait_one(self, wait_s: float) -> list[Any]:
        """One message as soon as there is one, or [] after about ``wait_s`` seconds."""
        if self._backlog:
            return self._take_backlog(1)
        expires_ns = int(wait_s * 1e9)
        return await self._request({"batch": 1, "expires": expires_ns}, 1, wait_s + 2.0)

    async def take(self, n: int) -> list[Any]:
        """Up to ``n`` messages that are there now (none: [])."""
        if n <= 0:
            return []
        got = self._take_backlog(n)
        if len(got) < n:
            got += await self._request({"batch": n - len(got), "no_wait": True}, n - len(got), 5.0)
        return got
