"""How long things take, for ETAs and "try again in ~N s": running averages of the worker's batches.

:class:`Estimator` learns from every finished batch (exponential moving averages of seconds per batch and
per item) and turns a queue position into seconds. Plain arithmetic: the caller passes the clock.
"""

from __future__ import annotations

import math

__all__ = ["Estimator"]


class Estimator:
    def __init__(self, *, item_s: float = 1.0, batch_s: float = 1.0, weight: float = 0.2) -> None:
        self.item_s = item_s  # seconds per job
        self.batch_s = batch_s  # seconds per batch
        self.weight = weight
        self._learned = False

    def learn(self, run_s: float, size: int) -> None:
        """A batch of ``size`` jobs took ``run_s`` seconds of worker time."""
        run_s = max(run_s, 1e-6)
        if not self._learned:
            self.batch_s, self.item_s, self._learned = run_s, run_s / size, True
            return
        w = self.weight
        self.batch_s = (1 - w) * self.batch_s + w * run_s
        self.item_s = (1 - w) * self.item_s + w * (run_s / size)

    def remaining_batch_s(self, started: float | None, now: float) -> float:
        """Seconds the running batch (started at ``started``; None: none runs) still needs."""
        if started is None:
            return 0.0
        return max(0.0, self.batch_s - (now - started))

    def eta_s(self, position: int | None, started: float | None, now: float) -> float:
        """Seconds until a job is done: ``position`` waiting jobs ahead of it (None: it is running)."""
        remaining = self.remaining_batch_s(started, now)
        if position is None:
            return round(remaining, 2)
        return round(remaining + (position + 1) * self.item_s, 2)

    def retry_after_user(self, etas: list[float], need: int) -> int:
        """Whole seconds until ``need`` of a user's jobs (with these ETAs; others not queued yet) are done."""
        etas = sorted(etas)
        if len(etas) >= need:
            return max(1, math.ceil(etas[need - 1]))
        return max(1, math.ceil((etas[-1] if etas else 0.0) + (need - len(etas)) * self.item_s))

    def retry_after_total(self, over: int, started: float | None, now: float) -> int:
        """Whole seconds until ``over`` more jobs have left the queue."""
        return max(1, math.ceil(self.remaining_batch_s(started, now) + over * self.item_s))
