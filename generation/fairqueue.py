"""The fair queue of the generation service: one FIFO per user, served round-robin, with batching.

:class:`FairQueue` holds the jobs waiting for the worker (not the running ones). The next batch starts with
the head job of the first user in the rotation; compatible jobs (equal :meth:`QueuedJob.batch_key`) are
added one per user per round, in rotation order; every user served moves behind everyone who was not.
:meth:`FairQueue.positions` simulates that rotation to tell each waiting job how many run before it.

Plain bookkeeping: no asyncio, no store, no clock.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Callable, Hashable
from typing import Generic, Protocol, TypeVar

__all__ = ["FairQueue", "QueuedJob"]


class QueuedJob(Protocol):
    @property
    def job_id(self) -> int: ...
    @property
    def user_key(self) -> str: ...
    @property
    def isolate(self) -> bool: ...  # runs alone, never batched
    def batch_key(self) -> Hashable: ...  # jobs with equal keys may share a batch


J = TypeVar("J", bound=QueuedJob)


class FairQueue(Generic[J]):
    def __init__(self) -> None:
        self._queues: dict[str, deque[J]] = {}
        self._rotation: deque[str] = deque()  # users with waiting jobs, next to serve first
        self._positions: dict[int, int] | None = None

    def __len__(self) -> int:
        return sum(len(q) for q in self._queues.values())

    def add(self, job: J, *, front: bool = False) -> None:
        """Queue ``job`` behind its user's jobs, or (``front``) ahead of everyone's."""
        queue = self._queues.setdefault(job.user_key, deque())
        if front:
            queue.appendleft(job)
            with contextlib.suppress(ValueError):
                self._rotation.remove(job.user_key)
            self._rotation.appendleft(job.user_key)
        else:
            queue.append(job)
            if job.user_key not in self._rotation:
                self._rotation.append(job.user_key)
        self._positions = None

    def remove(self, job: J) -> None:
        """Take ``job`` out of the queue (if it is there)."""
        queue = self._queues.get(job.user_key)
        if queue is not None:
            with contextlib.suppress(ValueError):
                queue.remove(job)
            if not queue:
                del self._queues[job.user_key]
                with contextlib.suppress(ValueError):
                    self._rotation.remove(job.user_key)
        self._positions = None

    def clear(self) -> None:
        self._queues.clear()
        self._rotation.clear()
        self._positions = None

    def peek(self, accept: Callable[[J], bool] | None = None) -> J | None:
        """The job the next batch starts with: the head job of the first user in the rotation, or, with
        ``accept``, the first such head job it accepts (e.g. one whose engine has a free worker; users
        whose head job waits for another engine do not hold up everyone else)."""
        for user in self._rotation:
            queue = self._queues.get(user)
            if queue and (accept is None or accept(queue[0])):
                return queue[0]
        return None

    def compatible(self, key: Hashable) -> int:
        """How many waiting jobs could join a batch of ``key``."""
        return sum(
            1
            for queue in self._queues.values()
            for job in queue
            if not job.isolate and job.batch_key() == key
        )

    def take_batch(self, head: J, max_batch: int) -> list[J]:
        """Take ``head`` plus compatible jobs, one per user per round in rotation order, up to
        ``max_batch``; the users served move behind everyone who was not."""
        batch = [head]
        served = [head.user_key]
        self.remove(head)
        if not head.isolate and max_batch > 1:
            key = head.batch_key()
            # The head was its user's pick of the first round: that user comes last in every round.
            order = [u for u in self._rotation if u != head.user_key]
            order += [head.user_key] if head.user_key in self._rotation else []
            progress = True
            while len(batch) < max_batch and progress:
                progress = False
                for user in order:
                    if len(batch) >= max_batch:
                        break
                    queue = self._queues.get(user)
                    if not queue:
                        continue
                    pick = next((j for j in queue if not j.isolate and j.batch_key() == key), None)
                    if pick is None:
                        continue
                    self.remove(pick)
                    batch.append(pick)
                    if user not in served:
                        served.append(user)
                    progress = True
        for user in served:
            with contextlib.suppress(ValueError):
                self._rotation.remove(user)
            if self._queues.get(user):
                self._rotation.append(user)
        self._positions = None
        return batch

    def positions(self) -> dict[int, int]:
        """job id -> how many waiting jobs run before it (the round-robin simulated; cached)."""
        if self._positions is None:
            order: dict[int, int] = {}
            queues = [list(self._queues.get(user, ())) for user in self._rotation]
            depth = 0
            while True:
                added = False
                for queue in queues:
                    if depth < len(queue):
                        order[queue[depth].job_id] = len(order)
                        added = True
                if not added:
                    break
                depth += 1
            self._positions = order
        return self._positions
