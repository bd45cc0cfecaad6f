"""The messages that cross the broker, as bytes.

Every message body is one frame: a 4-byte big-endian length, that many bytes of JSON (plain values), then
an optional binary part (a PNG, a chunk of a photo). Nothing is pickled: a worker on another machine never
unpickles what the network brings.

* :class:`JobMessage` (bot -> JetStream ``<prefix>.jobs.<engine>.<job_id>``): the request without its
  photo (a selfie is never written to the broker's disk: the worker asks the bot for it, see
  :class:`PhotoRequest`), the job's deadline and attempts, and which bot collects the result (``owner``);
* :class:`ResultMessage` (worker -> JetStream ``<prefix>.results.<owner>.<job_id>``): the picture or a
  one-line error, or that the job was cancelled;
* :class:`EventMessage` (worker -> core NATS ``<prefix>.events.<owner>``): started / step, best effort;
* presence: :class:`~generation.jobs.WorkerInfo` JSON with ``heartbeat_s`` (and ``gone`` on a clean exit).
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from typing import Any

from generation.jobs import GenerationRequest, GenerationResult, WorkerInfo

__all__ = [
    "EventMessage",
    "JobMessage",
    "PhotoRequest",
    "ResultMessage",
    "WireError",
    "decode_presence",
    "encode_presence",
    "frame",
    "unframe",
]

WIRE_VERSION = 1


class WireError(ValueError):
    """A message that cannot be read (another version, or not ours)."""


def frame(meta: dict[str, Any], blob: bytes = b"") -> bytes:
    head = json.dumps(meta, separators=(",", ":"), ensure_ascii=False).encode()
    return struct.pack(">I", len(head)) + head + blob


def unframe(data: bytes) -> tuple[dict[str, Any], bytes]:
    if len(data) < 4:
        raise WireError("message too short")
    (size,) = struct.unpack(">I", data[:4])
    if size > len(data) - 4:
        raise WireError("message truncated")
    try:
        meta = json.loads(data[4 : 4 + size])
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WireError(f"unreadable message: {exc}") from None
    if not isinstance(meta, dict) or meta.get("v") != WIRE_VERSION:
        raise WireError(f"message of another version: {meta.get('v') if isinstance(meta, dict) else '?'}")
    return meta, data[4 + size :]


@dataclass(frozen=True, slots=True)
class JobMessage:
    job_id: int
    owner: str
    request: GenerationRequest  # init_image is never sent (has_photo says whether there is one)
    timeout_s: float
    max_attempts: int
    has_photo: bool = False

    def encode(self) -> bytes:
        return frame(
            {
                "v": WIRE_VERSION,
                "job": self.job_id,
                "owner": self.owner,
                "request": self.request.to_json(),
                "timeout_s": self.timeout_s,
                "max_attempts": self.max_attempts,
                "has_photo": self.has_photo or self.request.init_image is not None,
            }
        )

    @classmethod
    def decode(cls, data: bytes) -> JobMessage:
        meta, _ = unframe(data)
        try:
            return cls(
                job_id=int(meta["job"]),
                owner=str(meta["owner"]),
                request=GenerationRequest.from_json(meta["request"]),
                timeout_s=float(meta["timeout_s"]),
                max_attempts=int(meta["max_attempts"]),
                has_photo=bool(meta.get("has_photo")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise WireError(f"bad job message: {exc}") from None


@dataclass(frozen=True, slots=True)
class ResultMessage:
    job_id: int
    worker: str
    run_s: float
    result: GenerationResult | None = None
    error: str | None = None
    cancelled: bool = False

    def encode(self) -> bytes:
        meta: dict[str, Any] = {
            "v": WIRE_VERSION,
            "job": self.job_id,
            "worker": self.worker,
            "run_s": self.run_s,
            "cancelled": self.cancelled,
            "error": self.error,
        }
        blob = b""
        if self.result is not None:
            r = self.result
            meta["result"] = {
                "width": r.width,
                "height": r.height,
                "engine": r.engine,
                "model": r.model,
                "spec": r.spec,
                "run_s": r.run_s,
            }
            blob = r.png
        return frame(meta, blob)

    @classmethod
    def decode(cls, data: bytes) -> ResultMessage:
        meta, blob = unframe(data)
        try:
            result = None
            if meta.get("result") is not None:
                r = meta["result"]
                result = GenerationResult(
                    png=blob,
                    width=int(r["width"]),
                    height=int(r["height"]),
                    engine=str(r["engine"]),
                    model=r.get("model"),
                    spec=dict(r["spec"]),
                    run_s=float(r.get("run_s", 0.0)),
                )
            return cls(
                job_id=int(meta["job"]),
                worker=str(meta.get("worker") or "?"),
                run_s=float(meta.get("run_s") or 0.0),
                result=result,
                error=meta.get("error"),
                cancelled=bool(meta.get("cancelled")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise WireError(f"bad result message: {exc}") from None


@dataclass(frozen=True, slots=True)
class EventMessage:
    kind: str  # "started" | "step"
    worker: str
    job_ids: tuple[int, ...] = ()
    step: int = 0
    total: int = 0

    def encode(self) -> bytes:
        return json.dumps(
            {
                "v": WIRE_VERSION,
                "kind": self.kind,
                "worker": self.worker,
                "jobs": list(self.job_ids),
                "step": self.step,
                "total": self.total,
            }
        ).encode()

    @classmethod
    def decode(cls, data: bytes) -> EventMessage:
        try:
            meta = json.loads(data)
            return cls(
                kind=str(meta["kind"]),
                worker=str(meta.get("worker") or "?"),
                job_ids=tuple(int(j) for j in meta.get("jobs") or ()),
                step=int(meta.get("step") or 0),
                total=int(meta.get("total") or 0),
            )
        except (KeyError, TypeError, ValueError, UnicodeDecodeError) as exc:
            raise WireError(f"bad event: {exc}") from None


@dataclass(frozen=True, slots=True)
class PhotoRequest:
    """A worker asks the bot that submitted a job for its photo, one chunk at a time (the photo lives only
    in that bot's memory; a chunk fits the broker's ``max_payload``). The reply's JSON says ``chunks`` (how
    many) or ``error`` (``"gone"``: the bot no longer has it)."""

    job_id: int
    chunk: int = 0

    def encode(self) -> bytes:
        return json.dumps({"v": WIRE_VERSION, "job": self.job_id, "chunk": self.chunk}).encode()

    @classmethod
    def decode(cls, data: bytes) -> PhotoRequest:
        try:
            meta = json.loads(data)
            return cls(job_id=int(meta["job"]), chunk=int(meta.get("chunk") or 0))
        except (KeyError, TypeError, ValueError, UnicodeDecodeError) as exc:
            raise WireError(f"bad photo request: {exc}") from None


@dataclass(frozen=True, slots=True)
class Presence:
    info: WorkerInfo
    heartbeat_s: float
    gone: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def encode_presence(info: WorkerInfo, *, heartbeat_s: float, gone: bool = False) -> bytes:
    return json.dumps(
        {"v": WIRE_VERSION, **info.to_json(), "heartbeat_s": heartbeat_s, "gone": gone}
    ).encode()


def decode_presence(data: bytes) -> Presence:
    try:
        meta = json.loads(data)
        if not isinstance(meta, dict) or meta.get("v") != WIRE_VERSION:
            raise WireError("presence of another version")
        return Presence(
            WorkerInfo.from_json(meta),
            heartbeat_s=float(meta.get("heartbeat_s") or 2.0),
            gone=bool(meta.get("gone")),
        )
    except (KeyError, TypeError, ValueError, UnicodeDecodeError) as exc:
        raise WireError(f"bad presence: {exc}") from None
