"""Engines for the service and broker tests. They run in the real worker process (loaded by
``"name=tests.generation.fake_engines:Class"``) and draw a plain PNG of the requested size.

:class:`FakeEngine` is the skeleton: one result per request, ``progress(index, 1, 1)`` after each; a subclass
says what drawing one request does (:meth:`FakeEngine.draw`: the spec to store, or this request's error).

:class:`FaultyEngine` misbehaves on request. The request's ``prompt`` says what to do, comma-separated:

* ``ok`` (or anything else): a small valid PNG;
* ``crash``: SIGKILL the worker process (every time);
* ``hang``: never return;
* ``raise``: this request's entry is an exception (the others succeed);
* ``raise-nul``: the same, with a NUL byte and a lone surrogate in the error text;
* ``raise-batch``: ``run_batch`` itself raises (a naive engine; the worker isolates the culprit);
* ``gate:<path>``: report step 0, then wait until ``<path>`` exists (a running batch the test controls);
* ``burn:<seconds>``: spin the CPU that long (a busy worker);
* ``count:<path>``: append this request's prompt to ``<path>`` each time it is drawn (counts runs).

:class:`PhotoEngine` reports what photo it was given (its size and digest), for the broker's photo path.
"""

from __future__ import annotations

import hashlib
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from generation.engines import SyntheticEngine, solid_png
from generation.jobs import GenerationRequest, GenerationResult

Progress = Callable[[int, int, int], None]


class FakeEngine:
    """One plain PNG per request; the stored spec is what :meth:`draw` returns."""

    name = "fake"

    def run_batch(
        self, requests: list[GenerationRequest], progress: Progress
    ) -> list[GenerationResult | BaseException]:
        out: list[GenerationResult | BaseException] = []
        for index, request in enumerate(requests):
            started = time.perf_counter()
            drawn = self.draw(index, request, progress)
            progress(index, 1, 1)
            if isinstance(drawn, BaseException):
                out.append(drawn)
                continue
            out.append(
                GenerationResult(
                    png=solid_png(request.size),
                    width=request.size,
                    height=request.size,
                    engine=self.name,
                    model=None,
                    spec=drawn,
                    run_s=time.perf_counter() - started,
                )
            )
        return out

    def draw(
        self, index: int, request: GenerationRequest, progress: Progress
    ) -> dict[str, Any] | BaseException:
        """The spec to store with request ``index`` of the batch, or the error that stands for its result."""
        return request.spec


def _actions(request: GenerationRequest) -> list[str]:
    return [part.strip() for part in request.prompt.split(",") if part.strip()]


class FaultyEngine(FakeEngine):
    def __init__(self, poll_s: float = 0.01) -> None:
        self.poll_s = poll_s

    def run_batch(
        self, requests: list[GenerationRequest], progress: Progress
    ) -> list[GenerationResult | BaseException]:
        if any("raise-batch" in _actions(r) for r in requests):
            raise RuntimeError("this engine cannot draw a batch with 'raise-batch' in it")
        return super().run_batch(requests, progress)

    def draw(
        self, index: int, request: GenerationRequest, progress: Progress
    ) -> dict[str, Any] | BaseException:
        failed: BaseException | None = None
        for action in _actions(request):
            if action == "crash":
                os.kill(os.getpid(), signal.SIGKILL)
            elif action == "hang":
                progress(index, 0, 1)
                while True:
                    time.sleep(3600)
            elif action == "raise":
                failed = ValueError("this engine refuses 'raise'")
            elif action == "raise-nul":
                failed = ValueError("bad\x00byte and \udcff surrogate")
            elif action.startswith("gate:"):
                progress(index, 0, 1)
                gate = Path(action.removeprefix("gate:"))
                while not gate.exists():
                    time.sleep(self.poll_s)
            elif action.startswith("burn:"):
                end = time.perf_counter() + float(action.removeprefix("burn:"))
                while time.perf_counter() < end:
                    pass
            elif action.startswith("count:"):
                with open(action.removeprefix("count:"), "a", encoding="utf-8") as fh:
                    fh.write(f"{request.spec.get('n', '?')}\n")
        return failed if failed is not None else request.spec


class OneAtATimeEngine(FaultyEngine):
    """The same, but the worker hands it one request per call (like the chibi engine), so a hang names
    its job; :class:`FaultyEngine` takes the whole batch in one call (like diffusion)."""

    one_at_a_time = True


class PhotoEngine(FakeEngine):
    """Stores the size and SHA-256 of the photo it was given (``init_image``) in the result's spec."""

    name = "photo"

    def draw(
        self, index: int, request: GenerationRequest, progress: Progress
    ) -> dict[str, Any] | BaseException:
        photo = request.init_image or b""
        return {**request.spec, "photo_bytes": len(photo), "photo_sha": hashlib.sha256(photo).hexdigest()}


def broken_factory() -> FaultyEngine:
    """An engine whose construction fails (the worker reports it instead of starting)."""
    raise RuntimeError("no model here")


class SlowOneAtATimeEngine(SyntheticEngine):
    """:class:`generation.engines.SyntheticEngine` (it stops between steps when cancelled) handed one
    request per call, like the chibi engine."""

    name = "slowseq"
    one_at_a_time = True

    def __init__(self) -> None:
        super().__init__(per_batch_s=60, per_item_s=0, steps=600)  # 60 s a picture: only a cancel ends it
