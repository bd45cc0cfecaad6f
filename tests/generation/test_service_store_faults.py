"""Failures stay failed: the handle of a job learns only what the job store recorded.

The store is the real one (SQLite and PostgreSQL) behind a thin wrapper that makes chosen calls fail, as a
terminated database backend does; one test uses a real fault instead (an error text with a NUL byte, which
the store refuses). After each case the handle's outcome and the jobs table must agree.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from generation.service import SAVE_FAILED, GenerationService, JobCancelled, ServiceStopped
from storage import Storage, jobs
from storage.jobstore import SqlJobStore
from tests.generation.service_kit import (
    DEADLINE_S,
    FAKE,
    MakeService,
    avatars_per_job,
    failure_of,
    jobs_in_db,
    poll,
    req,
    result_of,
    wait_event,
)

ALWAYS = -1


class FlakyStore(SqlJobStore):
    """The real job store; ``failures[method]`` calls of a method fail first (``ALWAYS``: every one)."""

    def __init__(self, storage: Storage, **failures: int) -> None:
        super().__init__(storage)
        self.failures = failures
        self.calls: Counter[str] = Counter()

    def _fault(self, method: str) -> None:
        self.calls[method] += 1
        left = self.failures.get(method, 0)
        if left == 0:
            return
        if left > 0:
            self.failures[method] = left - 1
        raise ConnectionError(f"server closed the connection unexpectedly ({method})")

    async def mark_running(self, job_id: int) -> None:
        self._fault("mark_running")
        await super().mark_running(job_id)

    async def complete(self, job_id: int, result: dict[str, Any]) -> dict[str, Any]:
        self._fault("complete")
        return await super().complete(job_id, result)

    async def fail(self, job_id: int, error: str) -> None:
        self._fault("fail")
        await super().fail(job_id, error)

    async def cancel(self, job_id: int) -> None:
        self._fault("cancel")
        await super().cancel(job_id)


async def test_store_calls_that_fail_a_few_times_are_retried(
    storage: Storage, make_service: MakeService
) -> None:
    store = FlakyStore(storage, mark_running=2, complete=2)
    service = await make_service(job_store=store)
    handle = await service.submit(req("a"))

    assert (await result_of(handle)).job_id == handle.job_id
    assert (store.calls["mark_running"], store.calls["complete"]) == (3, 3)
    assert (await jobs_in_db(storage))[handle.job_id][0] == "done"
    assert await avatars_per_job(storage) == {handle.job_id: 1}


async def test_a_result_that_cannot_be_saved_fails_the_job_and_it_stays_failed(
    storage: Storage, make_service: MakeService
) -> None:
    store = FlakyStore(storage, complete=ALWAYS)
    service = await make_service(job_store=store)
    handle = await service.submit(req("a"))

    failure = await failure_of(handle)
    assert failure.reason == SAVE_FAILED
    assert store.calls["complete"] == 3  # a bounded number of tries
    status, _attempts, error = (await jobs_in_db(storage))[handle.job_id]
    assert (status, error) == ("failed", SAVE_FAILED)
    assert await avatars_per_job(storage) == {}
    # The next start has nothing to run again: the user was told "failed", and it stays so.
    await service.stop()
    again = GenerationService(SqlJobStore(storage), engines=(FAKE,))
    try:
        assert await again.start() == []
    finally:
        await again.stop()
    assert (await jobs_in_db(storage))[handle.job_id][0] == "failed"


async def test_a_failure_that_cannot_be_recorded_leaves_the_job_to_the_next_start(
    storage: Storage, make_service: MakeService
) -> None:
    store = FlakyStore(storage, complete=ALWAYS, fail=ALWAYS)
    service = await make_service(job_store=store)
    handle = await service.submit(req("a"))
    await poll(lambda: store.calls["fail"] >= 2, "the service to keep trying to record the failure")
    assert not handle.done()  # nobody is told anything the store does not have

    await service.stop(drain_timeout=5.0)
    with pytest.raises(ServiceStopped):
        await result_of(handle)
    assert "failed" not in [event.kind async for event in handle.events()]
    assert (await jobs_in_db(storage))[handle.job_id][0] == "running"

    # The next start (the database works again) runs it and delivers it: it was never reported failed.
    again = GenerationService(SqlJobStore(storage), engines=(FAKE,))
    recovered = await again.start()
    try:
        assert [h.job_id for h in recovered] == [handle.job_id]
        assert (await result_of(recovered[0])).job_id == handle.job_id
    finally:
        await again.stop()
    assert (await jobs_in_db(storage))[handle.job_id][0] == "done"
    assert await avatars_per_job(storage) == {handle.job_id: 1}


class ChangesUnderfoot(SqlJobStore):
    """The real job store; just before ``complete``, someone else marks the job ``status`` (the user
    cancelled it, or another path failed it)."""

    def __init__(self, storage: Storage, status: str) -> None:
        super().__init__(storage)
        self.status = status
        self.completes = 0

    async def complete(self, job_id: int, result: dict[str, Any]) -> dict[str, Any]:
        self.completes += 1
        async with self.storage.transaction() as s:
            if self.status == "cancelled":
                await jobs.mark_cancelled(s, job_id)
            else:
                await jobs.mark_failed(s, job_id, "failed elsewhere")
        return await super().complete(job_id, result)


@pytest.mark.parametrize("status", ["cancelled", "failed"])
async def test_a_job_the_store_will_not_complete_is_never_reported_done(
    storage: Storage, make_service: MakeService, status: str
) -> None:
    store = ChangesUnderfoot(storage, status)
    service = await make_service(job_store=store)
    handle = await service.submit(req("a"))

    if status == "cancelled":
        with pytest.raises(JobCancelled):
            await result_of(handle)
    else:
        await failure_of(handle)
    assert store.completes == 1  # a refusal is an answer, not a fault to retry
    assert (await jobs_in_db(storage))[handle.job_id][0] == status
    assert await avatars_per_job(storage) == {}


async def test_a_cancel_that_fails_a_few_times_is_recorded(
    storage: Storage, make_service: MakeService, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    store = FlakyStore(storage, cancel=2)
    service = await make_service(job_store=store, max_batch=1)
    running = await service.submit(req("a", f"gate:{gate}"))
    await wait_event(running, "step")
    queued = await service.submit(req("b"))

    assert await queued.cancel() is True
    with pytest.raises(JobCancelled):
        await result_of(queued)
    assert store.calls["cancel"] == 3
    gate.touch()
    await result_of(running)
    rows = await jobs_in_db(storage)
    assert (rows[queued.job_id][0], rows[running.job_id][0]) == ("cancelled", "done")


async def test_an_error_text_no_database_takes_is_cleaned_before_it_is_recorded(
    storage: Storage, make_service: MakeService
) -> None:
    # The engine's error has a NUL byte and a lone surrogate: the store refuses such text, every time.
    service = await make_service()
    handle = await service.submit(req("a", "raise-nul"))

    failure = await failure_of(handle)
    assert "\x00" not in failure.reason and "bad" in failure.reason
    failure.reason.encode("utf-8")  # no lone surrogate either
    status, _attempts, error = (await jobs_in_db(storage))[handle.job_id]
    assert (status, error) == ("failed", failure.reason)


class Counting(SqlJobStore):
    """The real job store, counting the batch calls; ``cancel_before_running`` is marked cancelled by
    someone else (the user deleted it) just before the batch's ``mark_running_many``."""

    def __init__(self, storage: Storage, cancel_before_running: int | None = None) -> None:
        super().__init__(storage)
        self.cancel_before_running = cancel_before_running
        self.group_completes: list[int] = []
        self.single_completes = 0

    async def mark_running_many(self, job_ids: Sequence[int]) -> list[Exception | None]:
        if self.cancel_before_running in job_ids:
            async with self.storage.transaction() as s:
                await jobs.mark_cancelled(s, self.cancel_before_running)
        return await super().mark_running_many(job_ids)

    async def complete(self, job_id: int, result: dict[str, Any]) -> dict[str, Any]:
        self.single_completes += 1
        return await super().complete(job_id, result)

    async def complete_many(
        self, items: Sequence[tuple[int, dict[str, Any]]]
    ) -> list[dict[str, Any] | Exception]:
        self.group_completes.append(len(items))
        return await super().complete_many(items)


async def test_a_batch_is_stored_with_one_commit(storage: Storage, make_service: MakeService) -> None:
    store = Counting(storage)
    service = await make_service(job_store=store, max_batch=3, batch_window_s=DEADLINE_S)
    handles = [await service.submit(req(user, n=n)) for n, user in enumerate("abc")]  # the batch is full

    assert [(await result_of(h)).job_id for h in handles] == [h.job_id for h in handles]
    assert (store.group_completes, store.single_completes) == ([3], 0)
    assert {status for status, _, _ in (await jobs_in_db(storage)).values()} == {"done"}
    assert await avatars_per_job(storage) == {h.job_id: 1 for h in handles}


async def test_a_job_the_store_will_not_start_is_settled_as_recorded_and_the_rest_are_drawn(
    storage: Storage, make_service: MakeService
) -> None:
    # The batch goes to the worker at once and is recorded running while it draws; one of its jobs was
    # deleted meanwhile: it is stopped in the worker, never stored, and the others are done.
    store = Counting(storage)
    service = await make_service(job_store=store, max_batch=3, batch_window_s=DEADLINE_S)
    a = await service.submit(req("a", n=1))
    b = await service.submit(req("b", n=2))
    store.cancel_before_running = b.job_id
    c = await service.submit(req("c", n=3))

    with pytest.raises(JobCancelled):
        await result_of(b)
    assert [(await result_of(h)).job_id for h in (a, c)] == [a.job_id, c.job_id]
    rows = await jobs_in_db(storage)
    assert [rows[h.job_id][0] for h in (a, b, c)] == ["done", "cancelled", "done"]
    assert await avatars_per_job(storage) == {a.job_id: 1, c.job_id: 1}


async def test_a_batch_call_that_keeps_failing_falls_back_to_each_job_alone(
    storage: Storage, make_service: MakeService
) -> None:
    class BrokenGroups(Counting):
        async def complete_many(
            self, items: Sequence[tuple[int, dict[str, Any]]]
        ) -> list[dict[str, Any] | Exception]:
            self.group_completes.append(len(items))
            raise ConnectionError("server closed the connection unexpectedly")

    store = BrokenGroups(storage)
    service = await make_service(job_store=store, max_batch=2, batch_window_s=DEADLINE_S)
    handles = [await service.submit(req(user, n=n)) for n, user in enumerate("ab")]

    assert [(await result_of(h)).job_id for h in handles] == [h.job_id for h in handles]
    assert (store.group_completes, store.single_completes) == ([2, 2, 2], 2)
    assert await avatars_per_job(storage) == {h.job_id: 1 for h in handles}
