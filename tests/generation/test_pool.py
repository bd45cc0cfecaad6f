"""The plain parts of scaling out: the local pool's view of its worker, the broker's wire format, its
settings and names, engine strings with options. No broker here (tests/generation/test_broker*.py has
one)."""

from __future__ import annotations

import pytest

from generation.broker.config import BrokerConfig, check_name, redact_url
from generation.broker.pool import NatsPool
from generation.broker.wire import (
    EventMessage,
    JobMessage,
    PhotoRequest,
    ResultMessage,
    WireError,
    decode_presence,
    encode_presence,
    frame,
)
from generation.engines import ENGINES, USER_ENGINES, engine_spec, solid_png
from generation.jobs import GenerationRequest, GenerationResult, WorkerInfo
from generation.service import JobCancelled
from storage import Storage
from tests.generation.service_kit import MakeService, avatars_per_job, jobs_in_db, req, result_of, wait_event


async def test_the_local_pool_lists_its_one_worker(storage: Storage, make_service: MakeService) -> None:
    service = await make_service()
    (worker,) = service.workers()
    assert worker.worker_id == "local" and worker.pid == service.worker_pid
    assert set(worker.engines) == {"fake", "seq", "synthetic"} and worker.state == "idle"
    await result_of(await service.submit(req("a")))
    assert service.workers()[0].jobs_served == 1


def test_job_and_result_messages_round_trip_without_the_photo() -> None:
    request = GenerationRequest(
        user_key="discord:1",
        spec={"seed": 3},
        engine="diffusion",
        size=512,
        steps=20,
        init_image=b"\xff\xd8SELFIE-BYTES",
    )
    job = JobMessage(job_id=7, owner="bot", request=request, timeout_s=60.0, max_attempts=2)
    data = job.encode()
    assert b"SELFIE-BYTES" not in data  # a selfie never goes to the broker's disk
    back = JobMessage.decode(data)
    assert back.job_id == 7 and back.has_photo and back.request.init_image is None
    assert back.request.batch_key() == request.batch_key()

    png = solid_png(16)
    result = GenerationResult(
        png=png, width=16, height=16, engine="chibi", model=None, spec={"a": 1}, run_s=0.1
    )
    decoded = ResultMessage.decode(ResultMessage(job_id=7, worker="w", run_s=0.2, result=result).encode())
    assert decoded.result is not None and decoded.result.png == png and decoded.result.spec == {"a": 1}
    failed = ResultMessage.decode(ResultMessage(job_id=8, worker="w", run_s=0, error="nope").encode())
    assert failed.result is None and failed.error == "nope" and not failed.cancelled
    event = EventMessage.decode(EventMessage("step", "w", (1, 2), 3, 4).encode())
    assert event.job_ids == (1, 2) and (event.step, event.total) == (3, 4)
    assert PhotoRequest.decode(PhotoRequest(5, 2).encode()) == PhotoRequest(5, 2)


@pytest.mark.parametrize("data", [b"", b"\x00\x00\x00\x09{}", frame({"v": 99}), b"\x00\x00\x00\x02[]"])
def test_messages_of_another_kind_are_refused_with_a_reason(data: bytes) -> None:
    with pytest.raises(WireError):
        JobMessage.decode(data)
    with pytest.raises(WireError):
        ResultMessage.decode(data)


def test_presence_round_trips() -> None:
    info = WorkerInfo(
        "w1", "box", 12, ("chibi", "diffusion"), (("diffusion", "mini"),), "busy", 5, 1.0, 4, 0.5, ("chibi",)
    )
    presence = decode_presence(encode_presence(info, heartbeat_s=2.0))
    assert presence.info == info and presence.heartbeat_s == 2.0 and not presence.gone
    assert decode_presence(encode_presence(info, heartbeat_s=2.0, gone=True)).gone


def test_the_broker_pool_skips_the_batch_window_only_when_every_worker_draws_one_at_a_time() -> None:
    """A lone chibi job need not wait for company when the workers draw one request per call; a worker
    that does not say so (an older one) keeps the window for its engine."""
    pool = NatsPool(BrokerConfig(url="nats://127.0.0.1:1"), owner="bot")

    def seen(worker_id: str, one_at_a_time: tuple[str, ...]) -> None:
        info = WorkerInfo(worker_id, "box", 1, ("chibi", "diffusion"), one_at_a_time=one_at_a_time)
        pool._note(encode_presence(info, heartbeat_s=2.0))

    assert not pool.draws_one_at_a_time("chibi")  # nobody serves it yet
    seen("w1", ("chibi",))
    assert pool.draws_one_at_a_time("chibi") and not pool.draws_one_at_a_time("diffusion")
    seen("w2", ())
    assert not pool.draws_one_at_a_time("chibi")


def test_broker_settings_are_checked_and_never_show_a_password() -> None:
    config = BrokerConfig(url="nats://alice:s3cret@gpu-box:4222,nats://other:4222")
    assert "s3cret" not in repr(config) and "s3cret" not in config.shown_url
    assert config.servers == ["nats://alice:s3cret@gpu-box:4222", "nats://other:4222"]
    assert redact_url("tls://u:p@h:1") == "tls://u:***@h:1"
    assert config.names.jobs_stream == "CHIBIFY_JOBS"
    assert config.names.job_subject("chibi", 5) == "chibify.jobs.chibi.5"
    for bad, why in [
        ({"url": "http://x"}, "must start with nats://"),
        ({"url": " "}, "empty"),
        ({"url": "nats://x", "prefix": "a.b"}, "letters, digits"),
        ({"url": "nats://x", "ack_wait_s": 0.1}, "ack_wait_s"),
        ({"url": "nats://x", "tls_cert": "c.pem"}, "needs its key"),
    ]:
        with pytest.raises(ValueError, match=why):
            BrokerConfig(**bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="engine name"):
        check_name("engine name", "dif fusion")


def test_one_engine_list_and_engine_strings_with_options() -> None:
    assert USER_ENGINES == ("chibi", "diffusion", "gan")
    assert "synthetic" in {e.name for e in ENGINES} and "synthetic" not in USER_ENGINES
    spec = engine_spec("synthetic(per_batch_s=0.2, steps=3)")
    assert spec.name == "synthetic" and dict(spec.options) == {"per_batch_s": "0.2", "steps": "3"}
    with pytest.raises(ValueError, match="key=value"):
        engine_spec("synthetic(fast)")
    with pytest.raises(ValueError, match="unknown engine"):
        engine_spec("warp(speed=9)")


async def test_cancelling_a_running_job_stops_the_local_engine_between_steps(
    storage: Storage, make_service: MakeService
) -> None:
    # One job costs 60 s: only a cancel that reaches the engine frees the worker within the test's deadline.
    service = await make_service(
        engines=("synthetic(per_batch_s=60,per_item_s=0,steps=600)",), job_timeout_s=120
    )
    running = await service.submit(req("a", engine="synthetic"))
    await wait_event(running, "step")
    assert await running.cancel()
    with pytest.raises(JobCancelled):
        await result_of(running)
    after = await service.submit(req("b", engine="synthetic"))
    await wait_event(after, "step")  # the worker took the next job: the first one stopped
    assert await after.cancel()
    with pytest.raises(JobCancelled):
        await result_of(after)
    rows = await jobs_in_db(storage)
    assert rows[running.job_id][0] == rows[after.job_id][0] == "cancelled"
    assert await avatars_per_job(storage) == {}
