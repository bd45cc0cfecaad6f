"""Engines the worker can run, found by name.

An engine is any object with ``run_batch(requests, progress) -> list[GenerationResult | BaseException]``
(one entry per request, in order; an exception entry fails only that request). ``progress(index, step,
total_steps)`` reports that request ``index`` of the batch reached ``step`` of ``total_steps``. An engine
that draws one request at a time says so with ``one_at_a_time = True``: the worker then calls it once per
request, so the service can tell which request hung.

Engines are built in the worker process only (see :mod:`generation.worker`); this module imports no engine
code at import time, so the bot process can import it freely (it never imports torch).

Names resolve through :data:`ENGINES` (the one list every adapter reads: settings, the console, the
slash commands); any ``"module:factory"`` string works too, ``"name(key=value,...)"`` passes options to a
built-in, and ``EngineSpec(name, target, options)`` gives a name to a target with keyword options.
"""

from __future__ import annotations

import dataclasses
import importlib
import re
import struct
import threading
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol, runtime_checkable

from generation.jobs import EngineSpec, GenerationRequest, GenerationResult

__all__ = [
    "ENGINES",
    "ENGINE_REGISTRY",
    "USER_ENGINES",
    "ChibiAdapter",
    "Engine",
    "EngineInfo",
    "ProgressFn",
    "SyntheticEngine",
    "build_engine",
    "engine_spec",
    "solid_png",
]

ProgressFn = Callable[[int, int, int], None]


@dataclass(frozen=True, slots=True)
class EngineInfo:
    """One built-in engine: its name, where the worker finds it, and a line about it. ``listed`` engines
    are offered to people (``/avatar engine:``, ``/config engine:``, ``chibify avatar --engine``,
    ``CHIBIFY_ENGINE``); the others are for tests and benchmarks."""

    name: str
    target: str
    description: str
    listed: bool = True


#: The one list of engines; every adapter reads it.
ENGINES: tuple[EngineInfo, ...] = (
    EngineInfo(
        "chibi", "generation.engines:ChibiAdapter", "the built-in vector chibi engine (CPU, no download)"
    ),
    EngineInfo(
        "diffusion", "generation.diffusion.engine:DiffusionEngine", "a diffusion model (GPU recommended)"
    ),
    EngineInfo("gan", "generation.training.gan:GanEngine", 'the shipped "surprise me" GAN'),
    EngineInfo(
        "synthetic",
        "generation.engines:SyntheticEngine",
        "a stand-in for a GPU (fixed cost per batch and per item), for benchmarks and tests",
        listed=False,
    ),
)

#: Built-in engine names -> "module:factory".
ENGINE_REGISTRY: dict[str, str] = {e.name: e.target for e in ENGINES}

#: The engines people may choose, in the order they are offered.
USER_ENGINES: tuple[str, ...] = tuple(e.name for e in ENGINES if e.listed)


@runtime_checkable
class Engine(Protocol):
    def run_batch(
        self, requests: list[GenerationRequest], progress: ProgressFn
    ) -> list[GenerationResult | BaseException]: ...


_WITH_OPTIONS = re.compile(r"^([A-Za-z0-9_-]+)\((.*)\)$")


def engine_spec(value: str | EngineSpec) -> EngineSpec:
    """Normalise ``"chibi"``, ``"synthetic(per_batch_s=0.05,per_item_s=0.01)"`` (a registry name with
    keyword options, given to the factory as text), ``"name=module:factory"``, ``"module:factory"`` or an
    EngineSpec."""
    if isinstance(value, EngineSpec):
        return value
    value = value.strip()
    with_options = _WITH_OPTIONS.match(value)
    if with_options:
        name, raw = with_options.groups()
        if name not in ENGINE_REGISTRY:
            raise ValueError(f"unknown engine {name!r}: use one of {sorted(ENGINE_REGISTRY)}")
        options: list[tuple[str, Any]] = []
        for part in filter(None, (p.strip() for p in raw.split(","))):
            key, sep, option = part.partition("=")
            if not sep or not key.strip().isidentifier():
                raise ValueError(f"engine option {part!r} of {name!r} must look like key=value")
            options.append((key.strip(), option.strip()))
        return EngineSpec(name=name, target=ENGINE_REGISTRY[name], options=tuple(options))
    if "=" in value:
        name, _, target = value.partition("=")
        return EngineSpec(name=name.strip(), target=target.strip())
    if value in ENGINE_REGISTRY:
        return EngineSpec(name=value, target=ENGINE_REGISTRY[value])
    if ":" in value:
        return EngineSpec(name=value, target=value)
    raise ValueError(f"unknown engine {value!r}: use one of {sorted(ENGINE_REGISTRY)} or 'module:factory'")


def build_engine(spec: EngineSpec) -> Engine:
    """Import ``spec.target`` and call it with ``spec.options``. Runs in the worker process."""
    module_name, _, attr = spec.target.partition(":")
    if not module_name or not attr:
        raise ValueError(f"engine target {spec.target!r} must look like 'module:factory'")
    module = importlib.import_module(module_name)
    factory = getattr(module, attr)
    engine = factory(**dict(spec.options))
    if not callable(getattr(engine, "run_batch", None)):
        raise TypeError(f"engine {spec.name!r} ({spec.target}) has no run_batch method")
    return engine  # type: ignore[no-any-return, unused-ignore]


class ChibiAdapter:
    """The built-in vector chibi engine, one request at a time (it is CPU-bound and fast).

    ``generation.chibi`` is imported here, inside the worker, so the bot process never pays for it.
    """

    one_at_a_time = True  # the worker calls run_batch per request, so a hang names its job
    draws_selfie_spec = True  # the worker turns a selfie into request.spec first (prepare_selfie)

    def __init__(self) -> None:
        from generation.chibi import ChibiEngine
        from generation.spec import AvatarSpec

        self._engine = ChibiEngine()
        self._spec_cls = AvatarSpec

    def run_batch(
        self, requests: list[GenerationRequest], progress: ProgressFn
    ) -> list[GenerationResult | BaseException]:
        out: list[GenerationResult | BaseException] = []
        for index, request in enumerate(requests):
            started = time.perf_counter()
            try:
                # The stored spec keeps its open fields open (variations re-decide them with a new
                # seed); the engine resolves them itself, deterministically.
                spec = self._spec_cls.from_json(request.spec)
                faces = (0, 0)
                if selfie_prepared(request):  # the worker already turned the photo into the spec
                    faces = (int(request.meta("face_count") or 0), int(request.meta("face_used") or 0))
                elif request.init_image is not None:  # a selfie: the photo decides the spec
                    spec, _, analysis = self.selfie(request, spec.seed)
                    faces = (analysis.faces_found, analysis.chosen + 1)
                meta = {"prompt": request.prompt} if request.prompt else None
                png = self._engine.render(spec, request.size, metadata=meta)
                out.append(
                    GenerationResult(
                        png=png,
                        width=request.size,
                        height=request.size,
                        engine="chibi",
                        model=None,
                        spec=spec.to_json(),
                        run_s=time.perf_counter() - started,
                        face_count=faces[0],
                        face_used=faces[1],
                    )
                )
            except Exception as exc:
                out.append(exc)
            progress(index, 1, 1)
        return out

    @staticmethod
    def selfie_spec(request: GenerationRequest, seed: int) -> Any:
        """Analyse the photo in memory (it is never written anywhere) and merge the user's prompt over it."""
        return ChibiAdapter.selfie(request, seed)[0]

    @staticmethod
    def selfie(request: GenerationRequest, seed: int) -> tuple[Any, Any, Any]:
        """(spec with the user's prompt merged over it, decoded photo, face analysis), all in memory."""
        from generation.face import analyze_photo, chibify_spec, decode_photo

        assert request.init_image is not None
        index = request.meta("face_index")
        photo = decode_photo(request.init_image)
        analysis = analyze_photo(photo, face_index=int(index) if index else None, seed=seed)
        return chibify_spec(analysis, request.prompt), photo, analysis


#: Metadata keys :func:`prepare_selfie` adds to a request whose photo it has turned into the spec.
SELFIE_KEYS = ("selfie_read", "face_count", "face_used", "face_bbox", "face_read")


def selfie_prepared(request: GenerationRequest) -> bool:
    """True when the worker has already analysed this request's selfie (see :func:`prepare_selfie`)."""
    return request.meta("selfie_read") == "1"


def prepare_selfie(request: GenerationRequest) -> GenerationRequest:
    """Turn a selfie into its spec once, in the worker, before any engine runs.

    The photo is analysed in memory (never written anywhere), the user's prompt is merged over the derived
    spec, and the result replaces the request's spec; the faces found, the face used (1 = leftmost), its box
    and what was read (in English) go into the metadata. Every engine then draws ``request.spec`` as it is;
    the diffusion engine still reads the photo itself for its head crop. Requests without a photo, edits and
    requests already prepared come back unchanged. Raises :class:`~generation.face.decode.PhotoError`.
    """
    if request.init_image is None or request.kind == "edit" or selfie_prepared(request):
        return request
    from generation.spec import AvatarSpec

    spec, _, analysis = ChibiAdapter.selfie(request, AvatarSpec.from_json(request.spec).seed)
    extra = (
        ("selfie_read", "1"),
        ("face_count", str(analysis.faces_found)),
        ("face_used", str(analysis.chosen + 1)),
        ("face_bbox", ",".join(str(v) for v in analysis.bbox)),
        ("face_read", analysis.describe("en")),
    )
    kept = tuple((k, v) for k, v in request.metadata if k not in SELFIE_KEYS)
    return dataclasses.replace(request, spec=spec.to_json(), metadata=kept + extra)


@lru_cache(maxsize=8)
def solid_png(size: int, rgb: tuple[int, int, int] = (255, 214, 224)) -> bytes:
    """A valid ``size`` x ``size`` single-colour PNG, built with zlib only (cached)."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    row = b"\x00" + bytes(rgb) * size
    raw = zlib.compress(row * size, 6)
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


class SyntheticEngine:
    """A stand-in for a GPU: each batch costs ``per_batch_s + per_item_s * len(batch)`` of waiting (not
    CPU), reported as ``steps`` progress steps. Used by the benchmark and by tests. ``cancel()`` stops the
    running call at once (like the diffusion engine between denoising steps): its requests come back as
    ``RuntimeError("cancelled")``."""

    def __init__(self, per_batch_s: float = 0.05, per_item_s: float = 0.01, steps: int = 4) -> None:
        self.per_batch_s = float(per_batch_s)
        self.per_item_s = float(per_item_s)
        self.steps = max(1, int(steps))
        if self.per_batch_s < 0 or self.per_item_s < 0:
            raise ValueError("costs must not be negative")
        self._cancel = threading.Event()

    def cancel(self) -> None:
        self._cancel.set()

    def run_batch(
        self, requests: Sequence[GenerationRequest], progress: ProgressFn
    ) -> list[GenerationResult | BaseException]:
        self._cancel.clear()
        started = time.perf_counter()
        total = self.per_batch_s + self.per_item_s * len(requests)
        for step in range(1, self.steps + 1):
            if self._cancel.wait(total / self.steps):
                return [RuntimeError("cancelled") for _ in requests]
            for index in range(len(requests)):
                progress(index, step, self.steps)
        run_s = time.perf_counter() - started
        return [
            GenerationResult(
                png=solid_png(r.size),
                width=r.size,
                height=r.size,
                engine="synthetic",
                model=r.model,
                spec=r.spec,
                run_s=run_s,
            )
            for r in requests
        ]


def describe(spec: EngineSpec) -> dict[str, Any]:
    return {"name": spec.name, "target": spec.target, "options": dict(spec.options)}
