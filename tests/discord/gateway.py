"""Gateway half of the emulator: the WebSocket handshake, sessions, dispatch, resume and fault ops.

A session is created by IDENTIFY and outlives its socket: every dispatch gets the next sequence number
and is kept in the session's backlog, so a RESUME replays exactly what the client missed. Frames are
plain JSON TEXT frames; the ``compress`` query and identify field are ignored (discord.py only
decompresses BINARY frames).
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

if TYPE_CHECKING:
    from tests.discord.emulator import DiscordEmulator

DISPATCH, HEARTBEAT, IDENTIFY, PRESENCE, RESUME, RECONNECT = 0, 1, 2, 3, 6, 7
REQUEST_MEMBERS, INVALID_SESSION, HELLO, HEARTBEAT_ACK = 8, 9, 10, 11

# Intent bits the emulator honours when deciding whether a client receives an event.
GUILD_MESSAGES, DIRECT_MESSAGES, MESSAGE_CONTENT = 1 << 9, 1 << 12, 1 << 15


@dataclass
class GatewayEvent:
    """One thing that happened on the gateway, for tests to wait on (see ``Gateway.wait_for``)."""

    kind: str  # connect, identify, ready, resume, resumed, heartbeat, reconnect_sent, invalid_session_sent,
    # closed_by_server, closed_by_client, ...
    shard_id: int
    session_id: str | None
    detail: Any = None


@dataclass
class Session:
    session_id: str
    shard_id: int
    shard_count: int
    intents: int
    seq: int = 0
    backlog: list[dict[str, Any]] = field(default_factory=list)
    ws: web.WebSocketResponse | None = None
    invalid: bool = False

    @property
    def live(self) -> bool:
        return self.ws is not None and not self.ws.closed


class Gateway:
    def __init__(self, emulator: DiscordEmulator, heartbeat_interval_ms: float) -> None:
        self.emu = emulator
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.sessions: dict[str, Session] = {}
        self.by_shard: dict[int, Session] = {}
        self.events: list[GatewayEvent] = []
        self.received: list[dict[str, Any]] = []

    # --- bookkeeping ------------------------------------------------------------------------------------

    def _log(self, kind: str, session: Session | None, shard_id: int = 0, detail: Any = None) -> None:
        shard = session.shard_id if session else shard_id
        self.events.append(GatewayEvent(kind, shard, session.session_id if session else None, detail))
        self.emu._notify()

    def count(self, kind: str, shard_id: int | None = None) -> int:
        return sum(1 for e in self.events if e.kind == kind and (shard_id is None or e.shard_id == shard_id))

    async def wait_for(
        self, kind: str, *, shard_id: int | None = None, count: int = 1, within: float = 10.0
    ) -> None:
        """Wait until ``count`` events of ``kind`` (e.g. "ready", "resumed") have happened in total."""
        await self.emu.wait_until(
            lambda: self.count(kind, shard_id) >= count,
            within,
            f"{count} gateway {kind!r} (shard {shard_id})",
        )

    def live_session(self, shard_id: int = 0) -> Session | None:
        session = self.by_shard.get(shard_id)
        return session if session is not None and session.live else None

    def shard_for(self, guild_id: int | None) -> int:
        session = self.by_shard.get(0)
        count = session.shard_count if session else 1
        return 0 if guild_id is None else (guild_id >> 22) % max(count, 1)

    async def wait_live(self, shard_id: int = 0, within: float = 10.0) -> Session:
        return await self.emu.wait_until(
            lambda: self.live_session(shard_id), within, f"a live gateway session on shard {shard_id}"
        )

    # --- the socket -------------------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True, max_msg_size=0)
        await ws.prepare(request)
        self.emu._sockets.add(ws)
        self._log("connect", None, detail=request.path_qs)
        session: Session | None = None
        await ws.send_str(json.dumps({"op": HELLO, "d": {"heartbeat_interval": self.heartbeat_interval_ms}}))
        try:
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    continue
                frame = json.loads(msg.data)
                self.received.append(frame)
                op, data = frame.get("op"), frame.get("d")
                if op == HEARTBEAT:
                    await ws.send_str(json.dumps({"op": HEARTBEAT_ACK}))
                    self._log("heartbeat", session)
                elif op == IDENTIFY:
                    session = await self._identify(ws, data)
                elif op == RESUME:
                    session = await self._resume(ws, data)
                elif op == REQUEST_MEMBERS and session is not None:
                    await self._members_chunk(session, data)
                else:
                    self._log(f"op{op}", session, detail=data)
        finally:
            self.emu._sockets.discard(ws)
            if session is not None and session.ws is ws:
                session.ws = None
                if ws.close_code in (1000, 1001):
                    session.invalid = True  # a clean close ends the session, as on Discord
            self._log("closed", session, detail=ws.close_code)
        return ws

    async def _identify(self, ws: web.WebSocketResponse, data: dict[str, Any]) -> Session | None:
        if data.get("token") != self.emu.token:
            await ws.close(code=4004, message=b"Authentication failed.")
            self._log("auth_failed", None)
            return None
        shard_id, shard_count = data.get("shard") or (0, 1)
        if not 0 <= shard_id < shard_count:
            await ws.close(code=4010, message=b"Invalid shard.")
            return None
        session = Session(secrets.token_hex(16), shard_id, shard_count, int(data.get("intents") or 0), ws=ws)
        self.sessions[session.session_id] = session
        previous = self.by_shard.get(shard_id)
        if previous is not None and previous is not session:
            previous.invalid = True
        self.by_shard[shard_id] = session
        self._log("identify", session, detail=data)
        guilds = [g for g in self.emu.guilds.values() if self._guild_shard(g.id, shard_count) == shard_id]
        ready: dict[str, Any] = {
            "v": 10,
            "user": {**self.emu.bot.to_dict(), "verified": True, "mfa_enabled": False},
            "guilds": [{"id": str(g.id), "unavailable": True} for g in guilds],
            "session_id": session.session_id,
            "session_type": "normal",
            "resume_gateway_url": str(self.emu.resume_gateway_url),
            "application": {"id": str(self.emu.application_id), "flags": self.emu.application_flags},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "geo_ordered_rtc_regions": [],
        }
        if data.get("shard") is not None:
            ready["shard"] = [shard_id, shard_count]
        await self.dispatch(session, "READY", ready)
        self._log("ready", session)
        for guild in guilds:
            await self.dispatch(session, "GUILD_CREATE", guild.to_create_payload(self.emu.bot))
        self._log("guilds_sent", session)
        return session

    @staticmethod
    def _guild_shard(guild_id: int, shard_count: int) -> int:
        return (guild_id >> 22) % shard_count

    async def _resume(self, ws: web.WebSocketResponse, data: dict[str, Any]) -> Session | None:
        session = self.sessions.get(data.get("session_id") or "")
        if session is None or session.invalid or data.get("token") != self.emu.token:
            await ws.send_str(json.dumps({"op": INVALID_SESSION, "d": False}))
            self._log("resume_rejected", session)
            return None
        self._log("resume", session, detail=data.get("seq"))
        session.ws = ws
        last_seen = data.get("seq") or 0
        for frame in session.backlog:
            if frame["s"] > last_seen:
                await ws.send_str(json.dumps(frame))
        await self.dispatch(session, "RESUMED", {})
        self._log("resumed", session, detail=last_seen)
        return session

    async def _members_chunk(self, session: Session, data: dict[str, Any]) -> None:
        guild = self.emu.guilds.get(int(data["guild_id"]))
        members = guild.to_create_payload(self.emu.bot)["members"] if guild else []
        chunk = {"guild_id": data["guild_id"], "members": members, "chunk_index": 0, "chunk_count": 1}
        if data.get("nonce"):
            chunk["nonce"] = data["nonce"]
        await self.dispatch(session, "GUILD_MEMBERS_CHUNK", chunk)

    # --- sending ----------------------------------------------------------------------------------------

    async def dispatch(self, session: Session, event: str, data: dict[str, Any]) -> int:
        """Send (or, while the client is away, keep for RESUME) one dispatch; returns its sequence number."""
        session.seq += 1
        frame = {"op": DISPATCH, "t": event, "s": session.seq, "d": data}
        session.backlog.append(frame)
        if session.live:
            assert session.ws is not None
            await session.ws.send_str(json.dumps(frame))
        self.emu._notify()
        return session.seq

    def _detach(self, shard_id: int) -> tuple[Session, web.WebSocketResponse]:
        session = self.by_shard.get(shard_id)
        if session is None or session.ws is None:
            raise RuntimeError(f"no live gateway session on shard {shard_id}")
        ws, session.ws = session.ws, None  # from now on dispatches wait in the backlog for RESUME
        return session, ws

    async def send_reconnect(self, shard_id: int = 0) -> None:
        """Op 7: the client must close and RESUME."""
        session, ws = self._detach(shard_id)
        await ws.send_str(json.dumps({"op": RECONNECT, "d": None}))
        self._log("reconnect_sent", session)

    async def invalidate_session(self, *, resumable: bool, shard_id: int = 0) -> None:
        """Op 9: ``resumable`` True lets the client RESUME; False forces a fresh IDENTIFY."""
        session, ws = self._detach(shard_id)
        session.invalid = not resumable
        await ws.send_str(json.dumps({"op": INVALID_SESSION, "d": resumable}))
        self._log("invalid_session_sent", session, detail=resumable)

    async def close(self, code: int = 4000, *, shard_id: int = 0) -> None:
        """Close the socket from the server with ``code`` (4000 = unknown error: the client resumes)."""
        session, ws = self._detach(shard_id)
        await ws.close(code=code, message=b"emulator closed the connection")
        self._log("closed_by_server", session, detail=code)
