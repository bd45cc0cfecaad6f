"""Slow every database call down, to test that nothing a user waits on is late when the database is.

``slow_database(storage, seconds)`` adds ``seconds`` to every SQL statement the storage's engine runs
(the bot's reads and writes, and the job store's), without blocking the event loop: the delay is awaited
inside SQLAlchemy's greenlet bridge, exactly where a slow network round trip would be.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

from sqlalchemy import event
from sqlalchemy.util import await_only

from storage import Storage


class SlowDown:
    """The knob: ``seconds`` per statement (0 = full speed) and how many statements were slowed."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.statements = 0

    def __call__(self, conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        if self.seconds > 0:
            self.statements += 1
            await_only(asyncio.sleep(self.seconds))


@contextlib.contextmanager
def slow_database(storage: Storage, seconds: float = 1.0) -> Iterator[SlowDown]:
    """Every statement takes ``seconds`` longer while the block runs; afterwards (or after ``.seconds =
    0``) the rest runs at full speed. The listener stays on the engine, inert: removing it while a statement
    waits inside it would change SQLAlchemy's listener list under that statement's feet."""
    knob = SlowDown(seconds)
    event.listen(storage.engine.sync_engine, "before_cursor_execute", knob)
    try:
        yield knob
    finally:
        knob.seconds = 0
