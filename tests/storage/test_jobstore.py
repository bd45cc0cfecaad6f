"""The jobs table as the generation service's job store: delivery targets and whole requests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from storage import Job, Storage, User, jobs
from storage.errors import NotFound
from storage.jobstore import SqlJobStore, delivery_of

from .helpers import tx

EXPIRES = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)


def _deliver(**changes: Any) -> dict[str, Any]:
    """What ``generation.jobs.Delivery.to_json()`` gives (storage does not import generation)."""
    deliver: dict[str, Any] = {
        "group": "req-1",
        "user_id": 111_111_111_111_111_111,
        "channel_id": 222,
        "guild_id": 333,
        "public": True,
        "language": "zh",
        "application_id": 444,
        "interaction_token": "secret-token",
        "token_expires_at": EXPIRES.isoformat(),
    }
    deliver.update(changes)
    return deliver


async def _all_jobs(storage: Storage) -> list[Job]:
    async with storage.transaction() as s:
        return list((await s.scalars(sa.select(Job).order_by(Job.id))).all())


async def _user_count(storage: Storage) -> int:
    async with storage.transaction() as s:
        return await s.scalar(sa.select(sa.func.count()).select_from(User)) or 0


async def test_delivery_goes_into_columns_and_comes_back(storage: Storage) -> None:
    store = SqlJobStore(storage)
    job_id = await store.create({"prompt": "cat"}, "discord:555", kind="prompt", deliver=_deliver())
    job = await tx(storage, jobs.get_job_by_id, job_id)
    assert (job.request_group, job.deliver_user_id, job.channel_id, job.guild_id) == (
        "req-1",
        111_111_111_111_111_111,
        222,
        333,
    )
    assert (job.interaction_token, job.token_expires_at) == ("secret-token", EXPIRES)
    # Only what has no column stays in the request; the token is not duplicated there.
    assert job.request["deliver"] == {"public": True, "language": "zh", "application_id": 444}
    assert job.request["user_key"] == "discord:555"

    assert delivery_of(job) == _deliver()
    (recovered,) = await store.unfinished()
    assert recovered.deliver == _deliver()

    # Once delivered, the token is gone from the row and from what comes back.
    await tx(storage, jobs.mark_running, job_id)
    await tx(storage, jobs.mark_failed, job_id, "boom")
    await tx(storage, jobs.mark_delivered, [job_id], [(222, 9)])
    expected = _deliver()
    del expected["interaction_token"]
    assert delivery_of(await tx(storage, jobs.get_job_by_id, job_id)) == expected


async def test_console_jobs_have_no_delivery(storage: Storage) -> None:
    store = SqlJobStore(storage)
    job_id = await store.create({"prompt": "cat"}, "console:me", kind="prompt", deliver=None)
    job = await tx(storage, jobs.get_job_by_id, job_id)
    assert job.deliver_user_id is None and job.request_group is None and "deliver" not in job.request
    assert delivery_of(job) is None
    # A Delivery without user (console) keeps its group, and None values are left out.
    nobody = _deliver(
        user_id=None, channel_id=None, guild_id=None, interaction_token=None, token_expires_at=None
    )
    job = await tx(
        storage, jobs.get_job_by_id, await store.create({}, "console:me", kind="prompt", deliver=nobody)
    )
    assert job.deliver_user_id is None and job.request_group == "req-1"
    assert delivery_of(job) == {"group": "req-1", "public": True, "language": "zh", "application_id": 444}


async def test_create_many_makes_every_job_of_a_request(storage: Storage) -> None:
    store = SqlJobStore(storage)
    items = [({"prompt": "cat", "n": n}, "discord:555", "prompt") for n in range(4)]
    ids = await store.create_many(items, _deliver(group="grid-4"))
    made = await _all_jobs(storage)
    assert [j.id for j in made] == ids and ids == sorted(ids)
    assert [j.request["n"] for j in made] == [0, 1, 2, 3]
    assert {j.request_group for j in made} == {"grid-4"}
    assert len({j.user_id for j in made}) == 1
    assert [s.job_id for s in await store.unfinished()] == ids
    assert await store.create_many([], None) == []


@pytest.mark.parametrize(
    "bad",
    [
        ({"prompt": "cat"}, "user:999999", "prompt"),  # no such user: fails after the first rows
        ({"prompt": "cat"}, "discord:556", "photoshop"),  # no such kind
        ({"prompt": "cat\x00"}, "discord:556", "prompt"),  # PostgreSQL would refuse the NUL
        ({"prompt": "cat"}, "nonsense", "prompt"),
    ],
)
async def test_create_many_is_all_or_nothing(storage: Storage, bad: tuple[dict[str, Any], str, str]) -> None:
    store = SqlJobStore(storage)
    items = [
        ({"prompt": "cat"}, "discord:555", "prompt"),
        ({"prompt": "dog"}, "discord:557", "prompt"),
        bad,
        ({"prompt": "fox"}, "discord:555", "prompt"),
    ]
    with pytest.raises(ValueError):
        await store.create_many(items, _deliver())
    assert await _all_jobs(storage) == []
    assert await _user_count(storage) == 0  # the users made on first sight went with the jobs
    # The same request without the bad item goes through whole.
    ids = await store.create_many([items[0], items[1], items[3]], _deliver())
    assert len(ids) == 3 and len(await _all_jobs(storage)) == 3


async def test_old_style_deliver_dicts_still_work(storage: Storage) -> None:
    store = SqlJobStore(storage)
    later = datetime.now(UTC) + timedelta(minutes=15)
    job_id = await store.create(
        {}, "discord:5", kind="prompt", deliver={"channel_id": 7, "token_expires_at": later}
    )
    job = await tx(storage, jobs.get_job_by_id, job_id)
    assert job.channel_id == 7 and job.token_expires_at == later and job.request_group is None
    assert delivery_of(job) == {"channel_id": 7, "token_expires_at": later.isoformat()}


async def test_the_hot_transactions_run_in_one_call_and_a_failed_one_leaves_nothing(storage: Storage) -> None:
    """On SQLite the store's transactions run in one call on the connection's own thread (elsewhere through
    run_sync). A request that fails half-way writes nothing, and the pooled connection goes on working."""
    store = SqlJobStore(storage)
    assert store._tx.direct is (storage.engine.dialect.name == "sqlite")
    first = await store.create({"prompt": "a"}, "console:x", kind="prompt", deliver=None)
    bad = [({"prompt": "b"}, "console:x", "prompt"), ({"prompt": "nul \x00"}, "console:x", "prompt")]
    with pytest.raises(ValueError, match="NUL"):
        await store.create_many(bad, None)
    assert [job.id for job in await _all_jobs(storage)] == [first]
    second = await store.create({"prompt": "c"}, "console:x", kind="prompt", deliver=None)
    answers = await store.mark_running_many([first, second, 10_000])
    assert answers[:2] == [None, None] and isinstance(answers[2], NotFound)
    assert [job.status for job in await _all_jobs(storage)] == ["running", "running"]
