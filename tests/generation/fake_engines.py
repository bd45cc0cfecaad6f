"""Engines that misbehave on request, for the service's fault tests. They run in the real worker process.

The request's ``prompt`` says what to do, comma-separated:

* ``ok`` (or anything else): a small valid PNG;
* ``crash``: SIGKILL the worker process (every time);
* ``hang``: never return;
* ``raise``: this request's entry is an exception (the others succeed);
* ``raise-nul``: the same, with a NUL byte and a lone surrogate in the error text;
* ``raise-batch``: ``run_batch`` itself raises (a naive engine; the worker isolates the culprit);
* ``gate:<path>``: report step 0, then wait until ``<path>`` exists (a running batch the test controls);
* ``burn:<seconds>``: spin the CPU that long (a busy worker);
* ``count:<path>``: append this request's prompt to ``<path>`` each time it is drawn (counts runs).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

from generation.engines import solid_png
from generation.jobs import GenerationRequest, GenerationResult


def _actions(request: GenerationRequest) -> list[str]:
    return [part.strip() for part in request.prompt.split(",") if part.strip()]


class FaultyEngine:
    def __init__(self, poll_s: float = 0.01) -> None:
        self.poll_s = poll_s

    def run_batch(
        self, requests: list[GenerationRequest], progress: Callable[[int, int, int], None]
    ) -> list[GenerationResult | BaseException]:
        if any("raise-batch" in _actions(r) for r in requests):
            raise RuntimeError("this engine cannot draw a batch with 'raise-batch' in it")
        out: list[GenerationResult | BaseException] = []
        for index, request in enumerate(requests):
            started = time.perf_counter()
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
            progress(index, 1, 1)
            if failed is not None:
                out.append(failed)
                continue
            out.append(
                GenerationResult(
                    png=solid_png(request.size),
                    width=request.size,
                    height=request.size,
                    engine="fake",
                    model=None,
                    spec=request.spec,
                    run_s=time.perf_counter() - started,
                )
            )
        return out


class OneAtATimeEngine(FaultyEngine):
    """The same, but the worker hands it one request per call (like the chibi engine), so a hang names
    its job; :class:`FaultyEngine` takes the whole batch in one call (like diffusion)."""

    one_at_a_time = True


def broken_factory() -> FaultyEngine:
    """An engine whose construction fails (the worker reports it instead of starting)."""
    raise RuntimeError("no model here")
