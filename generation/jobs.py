"""Plain-value types that cross the generation boundary, and the queue <-> worker protocol.

Everything here is a frozen dataclass of plain values (ints, strings, bytes, dicts of JSON values), so it
pickles across the worker pipe and could as well travel over a socket to a remote GPU worker later. Nothing
here imports an engine, torch, discord or storage.

The worker protocol is five messages, one batch in flight at a time::

    service -> worker   RunBatch(batch_id, items=((job_id, GenerationRequest), ...))   |  Shutdown()
                        CancelJobs(job_ids)                                             (any time)
    worker  -> service  WorkerReady(pid, engines, ..., one_at_a_time)                   (once, after loading)
                        ItemsStarted(batch_id, job_ids)                                 (before each engine call)
                        BatchProgress(batch_id, job_id, step, total_steps)              (any number)
                        BatchDone(batch_id, outcomes=(ItemOutcome(job_id, result | error), ...))

A worker that dies shows up as end-of-file on its connection; a worker that hangs is caught by the
service's deadline, and the last ``ItemsStarted`` names the jobs that were in the engine then (one job for
an engine that draws one request at a time). Errors travel as short strings, never as pickled exception
objects. ``CancelJobs`` reaches the worker while it draws: a job not started yet is skipped, and an engine
call whose jobs are all cancelled is stopped between steps (``engine.cancel()``, e.g. the diffusion engine).

:class:`WorkerInfo` is what a worker says about itself (the local one, or a remote ``chibify worker``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

__all__ = [
    "EVENT_KINDS",
    "BatchDone",
    "BatchProgress",
    "BatchUpdate",
    "CancelJobs",
    "Delivery",
    "EngineSpec",
    "EventKind",
    "GenerationRequest",
    "GenerationResult",
    "ItemOutcome",
    "ItemsStarted",
    "ProgressEvent",
    "RunBatch",
    "Shutdown",
    "WorkerInfo",
    "WorkerMessage",
    "WorkerReady",
]

REQUEST_JSON_VERSION = 1


@dataclass(frozen=True, slots=True)
class Delivery:
    """Where a job's result goes, stored with the job so that a restart can still deliver it.

    Plain values only (the adapters fill it; the service carries it to the job store untouched).
    ``group`` ties the jobs of one request together (a ``count:4`` grid is one message); the interaction
    token is a credential for 15 minutes: it is stored with the job until the result is delivered and is
    never logged (``repr`` hides it).
    """

    group: str
    user_id: int | None = None  # Discord user (DM fallback); None for the console
    channel_id: int | None = None
    guild_id: int | None = None
    public: bool = False
    language: str = "en"
    application_id: int | None = None
    interaction_token: str | None = field(default=None, repr=False)
    token_expires_at: datetime | None = None  # timezone-aware

    def to_json(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "user_id": self.user_id,
            "channel_id": self.channel_id,
            "guild_id": self.guild_id,
            "public": self.public,
            "language": self.language,
            "application_id": self.application_id,
            "interaction_token": self.interaction_token,
            "token_expires_at": self.token_expires_at.isoformat() if self.token_expires_at else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Delivery:
        expires = data.get("token_expires_at")
        if isinstance(expires, str):
            expires = datetime.fromisoformat(expires)

        def _int(key: str) -> int | None:
            value = data.get(key)
            return int(value) if value is not None else None

        return cls(
            group=str(data.get("group") or ""),
            user_id=_int("user_id"),
            channel_id=_int("channel_id"),
            guild_id=_int("guild_id"),
            public=bool(data.get("public", False)),
            language=str(data.get("language") or "en"),
            application_id=_int("application_id"),
            interaction_token=data.get("interaction_token"),
            token_expires_at=expires if isinstance(expires, datetime) else None,
        )


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    """One picture to make.

    ``user_key`` identifies the person for fairness and caps (e.g. ``"discord:1234"`` or
    ``"console:alice"``). ``spec`` is the AvatarSpec JSON. ``init_image`` (a selfie) is processed in
    memory only: it is never written to the jobs table (see :meth:`to_json`).
    """

    user_key: str
    spec: dict[str, Any]
    engine: str = "chibi"
    model: str | None = None
    size: int = 512
    steps: int = 0
    prompt: str = ""
    kind: str = "prompt"
    parent_spec: dict[str, Any] | None = None
    init_image: bytes | None = field(default=None, repr=False)
    metadata: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if not self.user_key:
            raise ValueError("user_key must not be empty")
        if not isinstance(self.spec, dict):
            raise TypeError("spec must be the AvatarSpec JSON (a dict)")
        if not 16 <= self.size <= 4096:
            raise ValueError(f"size must be between 16 and 4096 pixels, got {self.size}")
        if self.steps < 0:
            raise ValueError("steps must not be negative")
        if not self.engine:
            raise ValueError("engine must be named")

    def batch_key(self) -> tuple[str, str | None, int, int]:
        """Requests with equal keys can run in one batch."""
        return (self.engine, self.model, self.size, self.steps)

    def meta(self, key: str, default: str | None = None) -> str | None:
        for k, v in self.metadata:
            if k == key:
                return v
        return default

    def to_json(self) -> dict[str, Any]:
        """JSON for the jobs table. The selfie is left out on purpose; ``has_init_image`` records it."""
        return {
            "v": REQUEST_JSON_VERSION,
            "user_key": self.user_key,
            "spec": self.spec,
            "engine": self.engine,
            "model": self.model,
            "size": self.size,
            "steps": self.steps,
            "prompt": self.prompt,
            "kind": self.kind,
            "parent_spec": self.parent_spec,
            "has_init_image": self.init_image is not None,
            "metadata": [[k, v] for k, v in self.metadata],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GenerationRequest:
        """Rebuild a request stored with :meth:`to_json` (``init_image`` is never stored: it comes back None)."""
        return cls(
            user_key=str(data["user_key"]),
            spec=dict(data["spec"]),
            engine=str(data.get("engine", "chibi")),
            model=data.get("model"),
            size=int(data.get("size", 512)),
            steps=int(data.get("steps", 0)),
            prompt=str(data.get("prompt", "")),
            kind=str(data.get("kind", "prompt")),
            parent_spec=data.get("parent_spec"),
            init_image=None,
            metadata=tuple((str(k), str(v)) for k, v in data.get("metadata", ())),
        )


@dataclass(frozen=True, slots=True)
class GenerationResult:
    """A finished picture. ``job_id`` and ``stored`` (what the job store returned when it saved the
    avatar, e.g. its ids) are filled in by the service."""

    png: bytes = field(repr=False)
    width: int
    height: int
    engine: str
    model: str | None
    spec: dict[str, Any]
    run_s: float
    job_id: int = 0
    stored: Any = None
    # A selfie: how many faces the photo showed and which one (1 = leftmost) was drawn; 0 otherwise.
    face_count: int = 0
    face_used: int = 0

    def to_store(self, request: GenerationRequest) -> dict[str, Any]:
        """The plain dict handed to ``JobStore.complete``."""
        seed = self.spec.get("seed", request.spec.get("seed", 0))
        return {
            "png": self.png,
            "width": self.width,
            "height": self.height,
            "engine": self.engine,
            "model": self.model,
            "spec": self.spec,
            "spec_version": int(self.spec.get("version", 1)),
            "seed": int(seed or 0),
            "prompt": request.prompt,
            "kind": request.kind,
            "metadata": dict(request.metadata),
        }


EventKind = Literal["queued", "position", "started", "step", "done", "failed", "cancelled"]
EVENT_KINDS: tuple[str, ...] = ("queued", "position", "started", "step", "done", "failed", "cancelled")


@dataclass(frozen=True, slots=True)
class ProgressEvent:
    """What a waiting user can be told. ``done``, ``failed`` and ``cancelled`` are the last event."""

    job_id: int
    kind: EventKind
    position: int | None = None
    eta_s: float | None = None
    step: int | None = None
    total_steps: int | None = None
    message: str = ""

    @property
    def final(self) -> bool:
        return self.kind in ("done", "failed", "cancelled")


@dataclass(frozen=True, slots=True)
class EngineSpec:
    """How the worker builds an engine: ``target`` is ``"module:factory"``, called with ``options``."""

    name: str
    target: str
    options: tuple[tuple[str, Any], ...] = ()


# --- the worker protocol ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunBatch:
    batch_id: int
    items: tuple[tuple[int, GenerationRequest], ...]


@dataclass(frozen=True, slots=True)
class Shutdown:
    pass


@dataclass(frozen=True, slots=True)
class CancelJobs:
    """Stop these jobs: skip them if not started, stop the engine between steps if all of its current
    call's jobs are cancelled. Their outcomes come back with ``cancelled=True``."""

    job_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class WorkerReady:
    pid: int
    engines: tuple[str, ...]
    error: str | None = None
    models: tuple[tuple[str, str], ...] = ()  # (engine, model) of engines that name their model
    one_at_a_time: tuple[str, ...] = ()  # engines that draw one request per call (no gain from batching)


@dataclass(frozen=True, slots=True)
class BatchProgress:
    batch_id: int
    job_id: int
    step: int
    total_steps: int


@dataclass(frozen=True, slots=True)
class ItemsStarted:
    """The worker hands these jobs of the batch to the engine in one call. The jobs of earlier calls of the
    same batch are drawn; if the batch hangs, the last call's jobs are the ones that hung. An engine that
    draws one request at a time gets one call per job, so the job that hung is known exactly."""

    batch_id: int
    job_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class ItemOutcome:
    job_id: int
    result: GenerationResult | None = None
    error: str | None = None
    cancelled: bool = False  # stopped by a CancelJobs before or while it was drawn


@dataclass(frozen=True, slots=True)
class BatchDone:
    batch_id: int
    outcomes: tuple[ItemOutcome, ...]
    run_s: float = 0.0


#: What the service hears about a running batch before its :class:`BatchDone`.
BatchUpdate = ItemsStarted | BatchProgress
WorkerMessage = WorkerReady | ItemsStarted | BatchProgress | BatchDone


WorkerState = Literal["idle", "busy", "starting", "stopping"]


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """A live worker as ``chibify workers`` and ``/queue`` list it (plain values; ``last_seen`` is a Unix
    time)."""

    worker_id: str
    host: str
    pid: int | None
    engines: tuple[str, ...]
    models: tuple[tuple[str, str], ...] = ()  # (engine, model) for engines that name their model
    state: WorkerState = "idle"
    jobs_served: int = 0
    last_seen: float = 0.0
    max_batch: int = 1
    started_at: float = 0.0
    #: Engines that draw one request per engine call (``one_at_a_time``, like the chibi engine): a lone
    #: job of theirs need not wait for company (``batch_window_s``). Older workers say nothing: ().
    one_at_a_time: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.worker_id,
            "host": self.host,
            "pid": self.pid,
            "engines": list(self.engines),
            "models": {engine: model for engine, model in self.models},
            "state": self.state,
            "jobs_served": self.jobs_served,
            "last_seen": self.last_seen,
            "max_batch": self.max_batch,
            "started_at": self.started_at,
            "one_at_a_time": list(self.one_at_a_time),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WorkerInfo:
        state = str(data.get("state") or "idle")
        models = data.get("models") or {}
        return cls(
            worker_id=str(data["id"]),
            host=str(data.get("host") or "?"),
            pid=int(data["pid"]) if data.get("pid") is not None else None,
            engines=tuple(str(e) for e in data.get("engines") or ()),
            models=tuple(sorted((str(k), str(v)) for k, v in dict(models).items())),
            state=state if state in ("idle", "busy", "starting", "stopping") else "busy",  # type: ignore[arg-type]
            jobs_served=int(data.get("jobs_served") or 0),
            last_seen=float(data.get("last_seen") or 0.0),
            max_batch=int(data.get("max_batch") or 1),
            started_at=float(data.get("started_at") or 0.0),
            one_at_a_time=tuple(str(e) for e in data.get("one_at_a_time") or ()),
        )
