"""The plain-value parts of the service: requests as stored JSON, engine names, user keys, the synthetic
engine, the worker's error text. No process, no database."""

from __future__ import annotations

import io
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image

from generation.engines import ENGINE_REGISTRY, SyntheticEngine, build_engine, engine_spec, solid_png
from generation.eta import Estimator
from generation.fairqueue import FairQueue
from generation.jobs import EngineSpec, GenerationRequest, GenerationResult
from generation.worker import describe_error
from storage.jobstore import parse_user_key


def test_stored_request_round_trips_without_the_selfie() -> None:
    request = GenerationRequest(
        user_key="discord:42",
        spec={"seed": 7, "hair": {"color": "#112233"}},
        kind="selfie",
        prompt="cat ears",
        init_image=b"\xff\xd8 a photo",
        metadata=(("parent", "abc"),),
    )
    stored = request.to_json()
    assert "init_image" not in stored and stored["has_init_image"] is True
    assert b"photo" not in repr(stored).encode()
    back = GenerationRequest.from_json(stored)
    assert back.init_image is None
    assert (back.user_key, back.spec, back.kind, back.prompt, back.metadata) == (
        "discord:42",
        request.spec,
        "selfie",
        "cat ears",
        (("parent", "abc"),),
    )
    assert back.meta("parent") == "abc" and back.meta("nope") is None


def test_batch_key_groups_by_engine_model_size_and_steps() -> None:
    a = GenerationRequest(user_key="u:1", spec={}, prompt="one")
    b = GenerationRequest(user_key="u:2", spec={"seed": 3}, prompt="two")
    c = GenerationRequest(user_key="u:1", spec={}, size=1024)
    assert a.batch_key() == b.batch_key() == ("chibi", None, 512, 0)
    assert a.batch_key() != c.batch_key()


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"user_key": ""}, ValueError),
        ({"size": 8}, ValueError),
        ({"steps": -1}, ValueError),
        ({"spec": []}, TypeError),
    ],
)
def test_requests_are_checked_when_made(kwargs: dict[str, object], error: type[Exception]) -> None:
    base: dict[str, object] = {"user_key": "console:a", "spec": {}}
    with pytest.raises(error):
        GenerationRequest(**{**base, **kwargs})  # type: ignore[arg-type]


def test_engine_names_resolve_through_the_registry_or_module_paths() -> None:
    assert engine_spec("chibi") == EngineSpec("chibi", ENGINE_REGISTRY["chibi"])
    assert engine_spec("fake=tests.generation.fake_engines:FaultyEngine").name == "fake"
    assert engine_spec("tests.generation.fake_engines:FaultyEngine").target.endswith(":FaultyEngine")
    with pytest.raises(ValueError, match="unknown engine"):
        engine_spec("dall-e")
    with pytest.raises(ValueError, match="module:factory"):
        build_engine(EngineSpec("x", "no_colon_here"))


def test_synthetic_engine_costs_per_batch_and_per_item_and_draws_real_pngs() -> None:
    engine = build_engine(
        EngineSpec("synthetic", ENGINE_REGISTRY["synthetic"], (("per_batch_s", 0.0), ("per_item_s", 0.0)))
    )
    assert isinstance(engine, SyntheticEngine)
    steps: list[tuple[int, int, int]] = []
    requests = [
        GenerationRequest(user_key="console:a", spec={"seed": i}, engine="synthetic", size=48)
        for i in range(3)
    ]
    results = engine.run_batch(requests, lambda *p: steps.append(p))
    assert all(isinstance(r, GenerationResult) for r in results)
    first = results[0]
    assert isinstance(first, GenerationResult)
    assert Image.open(io.BytesIO(first.png)).size == (48, 48)
    assert (2, 4, 4) in steps  # item 2 reached step 4 of 4
    assert Image.open(io.BytesIO(solid_png(16))).getpixel((3, 3)) == (255, 214, 224)


def test_user_keys_name_discord_console_or_row_ids() -> None:
    assert parse_user_key("discord:123") == ("discord", 123)
    assert parse_user_key("console:alice") == ("console", "alice")
    assert parse_user_key("user:7") == ("user", 7)
    for bad in ("alice", "discord:abc", "slack:1", "console:"):
        with pytest.raises(ValueError):
            parse_user_key(bad)


def test_errors_reach_users_as_one_short_line() -> None:
    assert describe_error(ValueError("bad hat\nTraceback...")) == "ValueError: bad hat"
    assert describe_error(RuntimeError()) == "RuntimeError"
    assert len(describe_error(ValueError("x" * 5000))) < 320


def test_importing_the_service_pulls_in_no_engine_code() -> None:
    code = (
        "import sys, generation.service, storage.jobstore\n"
        "bad = [m for m in ('torch', 'diffusers', 'generation.chibi', 'discord', 'skia') if m in sys.modules]\n"
        "print(','.join(bad))"
    )
    root = Path(__file__).resolve().parents[2]
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root)
    out = run.stdout.strip()
    assert out == ""


def test_chibi_adapter_stores_the_open_spec_that_re_renders_exactly() -> None:
    import generation.chibi

    if not hasattr(generation.chibi, "ChibiEngine"):
        pytest.skip("generation.chibi.ChibiEngine is not there yet")
    from generation.engines import ChibiAdapter

    adapter = ChibiAdapter()
    steps: list[tuple[int, int, int]] = []
    requests = [
        GenerationRequest(user_key="console:a", spec={"seed": 5}, size=128),
        GenerationRequest(user_key="console:a", spec={"seed": 5, "skin_tone": "not-a-tone"}, size=128),
    ]
    good, bad = adapter.run_batch(requests, lambda *p: steps.append(p))
    assert isinstance(good, GenerationResult) and isinstance(bad, Exception)
    assert Image.open(io.BytesIO(good.png)).size == (128, 128)
    # Open fields stay open (variations re-decide them); resolution is deterministic, so it re-renders exactly.
    assert good.spec["seed"] == 5 and good.spec["skin_tone"] is None
    from generation.chibi import ChibiEngine
    from generation.spec import AvatarSpec

    assert ChibiEngine().render(AvatarSpec.from_json(good.spec), 128) == good.png
    assert steps == [(0, 1, 1), (1, 1, 1)]


# --- the fair queue and the estimator ----------------------------------------------------------------------


@dataclass(eq=False)
class Waiting:
    job_id: int
    user_key: str
    size: int = 512
    isolate: bool = False

    def batch_key(self) -> int:
        return self.size


def test_fair_queue_serves_users_in_turn_and_batches_one_per_user_per_round() -> None:
    queue: FairQueue[Waiting] = FairQueue()
    jobs = [Waiting(1, "a"), Waiting(2, "a"), Waiting(3, "a"), Waiting(4, "b"), Waiting(5, "c", size=64)]
    for job in jobs:
        queue.add(job)
    assert queue.positions() == {1: 0, 4: 1, 5: 2, 2: 3, 3: 4}

    head = queue.peek()
    assert head is not None and head.job_id == 1
    # a's head, then b's (c's is not compatible): one per user per round, so b is not left out
    assert [j.job_id for j in queue.take_batch(head, max_batch=2)] == [1, 4]
    # a and b were served: c goes first now
    assert queue.positions() == {5: 0, 2: 1, 3: 2}
    head = queue.peek()
    assert head is not None and head.job_id == 5
    assert [j.job_id for j in queue.take_batch(head, max_batch=2)] == [5]  # nothing else is 64 px
    head = queue.peek()
    assert head is not None and [j.job_id for j in queue.take_batch(head, max_batch=4)] == [2, 3]
    assert len(queue) == 0

    queue.add(jobs[2])

    retried = Waiting(9, "b", isolate=True)
    queue.add(retried, front=True)
    assert queue.peek() is retried and queue.compatible(512) == 1  # an isolated job never batches
    assert [j.job_id for j in queue.take_batch(retried, max_batch=3)] == [9]
    queue.remove(jobs[2])
    assert queue.positions() == {} and len(queue) == 0 and queue.peek() is None


def test_estimator_learns_from_batches_and_turns_positions_into_seconds() -> None:
    estimate = Estimator()
    estimate.learn(2.0, 4)  # the first batch sets the figures
    assert (estimate.batch_s, estimate.item_s) == (2.0, 0.5)
    estimate.learn(4.0, 4)
    assert estimate.batch_s == pytest.approx(2.4) and estimate.item_s == pytest.approx(0.6)

    # a batch started 1 s ago has 1.4 s left; the job at position 2 waits for it and three more items
    assert estimate.eta_s(None, started=10.0, now=11.0) == 1.4
    assert estimate.eta_s(2, started=10.0, now=11.0) == pytest.approx(1.4 + 3 * 0.6)
    assert estimate.eta_s(0, started=None, now=11.0) == pytest.approx(0.6)
    # "try again in ~N s": when the second of the user's jobs is done; or when 3 more have left the queue
    assert estimate.retry_after_user([5.2, 1.1, 3.5], need=2) == 4
    assert estimate.retry_after_user([1.1], need=3) == 3  # 1.1 + 2 items of 0.6
    assert estimate.retry_after_total(3, started=None, now=0.0) == 2


async def test_results_that_arrive_while_the_store_is_busy_are_stored_together() -> None:
    """Remote workers' results arrive one message each: the first is stored at once, the ones that come
    while that store call runs go together in the next one (one transaction, one commit)."""
    import asyncio

    from generation.bookkeeping import Bookkeeper
    from generation.service import _GroupCommit

    class Store:
        def __init__(self) -> None:
            self.calls: list[list[int]] = []
            self.busy = asyncio.Event()
            self.release = asyncio.Event()

        async def complete(self, job_id: int, result: dict[str, object]) -> dict[str, int]:
            self.calls.append([job_id])
            self.busy.set()
            await self.release.wait()
            return {"avatar_id": job_id}

        async def complete_many(self, items: list[tuple[int, dict[str, object]]]) -> list[object]:
            self.calls.append([job_id for job_id, _ in items])
            return [{"avatar_id": job_id} if job_id != 4 else LookupError("gone") for job_id, _ in items]

    store = Store()
    group = _GroupCommit(Bookkeeper(store, asyncio.Event()))  # type: ignore[arg-type]
    first = asyncio.ensure_future(group.complete(1, {}))
    await store.busy.wait()
    rest = [asyncio.ensure_future(group.complete(n, {})) for n in (2, 3, 4)]
    await asyncio.sleep(0)
    store.release.set()
    assert await first == {"avatar_id": 1}
    answers = await asyncio.gather(*rest)
    assert store.calls == [[1], [2, 3, 4]]
    assert answers[:2] == [{"avatar_id": 2}, {"avatar_id": 3}]
    assert isinstance(answers[2], LookupError)  # a refusal is that job's answer, not its neighbours'
