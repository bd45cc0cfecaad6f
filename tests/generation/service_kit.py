"""Helpers of the generation service tests (fixtures are in conftest.py). Nothing here sleeps to wait:
helpers wait on a job's events or poll with a deadline."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from generation.jobs import GenerationRequest, ProgressEvent
from generation.service import GenerationService, JobFailed, JobHandle
from storage import Avatar, Job, Storage

#: The fault engines of tests/generation/fake_engines.py: ``fake`` takes a whole batch in one call (like
#: diffusion), ``seq`` one request per call (like the chibi engine).
FAKE = "fake=tests.generation.fake_engines:FaultyEngine"
SEQ = "seq=tests.generation.fake_engines:OneAtATimeEngine"
DEADLINE_S = 30.0

MakeService = Callable[..., Awaitable[GenerationService]]


def req(
    user: str, prompt: str = "ok", n: int = 0, *, engine: str = "fake", size: int = 32
) -> GenerationRequest:
    return GenerationRequest(
        user_key=f"console:{user}", spec={"n": n, "seed": n}, engine=engine, prompt=prompt, size=size
    )


async def wait_event(handle: JobHandle, kind: str) -> ProgressEvent:
    async with asyncio.timeout(DEADLINE_S):
        async for event in handle.events():
            if event.kind == kind:
                return event
    raise AssertionError(f"job {handle.job_id} ended without a {kind!r} event")


async def result_of(handle: JobHandle) -> Any:
    async with asyncio.timeout(DEADLINE_S):
        return await handle.result()


async def failure_of(handle: JobHandle) -> JobFailed:
    with pytest.raises(JobFailed) as info:
        await result_of(handle)
    return info.value


async def poll(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


async def jobs_in_db(storage: Storage) -> dict[int, tuple[str, int, str | None]]:
    """job id -> (status, attempts, error)"""
    async with storage.transaction() as s:
        rows = (await s.execute(sa.select(Job.id, Job.status, Job.attempts, Job.error))).all()
    return {r.id: (str(r.status), r.attempts, r.error) for r in rows}


async def avatars_per_job(storage: Storage) -> dict[int, int]:
    async with storage.transaction() as s:
        rows = (await s.execute(sa.select(Avatar.job_id, sa.func.count()).group_by(Avatar.job_id))).all()
    return {r[0]: r[1] for r in rows if r[0] is not None}


def count_lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []
