"""The use cases: create, edit, vary, re-roll, history, show, export, favourite, delete, forget.

Shared by the Discord cogs and the ``chibify`` console, so both behave the same. No discord import here:
adapters pass an :class:`Actor` (who is acting, where) and get plain values back (:class:`AvatarView`).
Every avatar a user reaches goes through the storage layer's owner checks.

Generation goes through the :class:`~generation.service.GenerationService` queue: a request is submitted
(the job row is written first), and :meth:`Studio.finish` waits for its avatars. Adapters that show
progress iterate ``pending.handles[i].events()`` in between.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.errors import BadInput, Busy, GenerationFailed, Limited, NotFoundError, Refused, Unavailable
from bot.messages import note, say, t
from generation.edits import apply_edit, describe_changes, variation
from generation.jobs import Delivery, GenerationRequest
from generation.policy import check_prompt
from generation.prompt import ParseResult, PromptError, Understood, parse_prompt
from generation.service import (
    GenerationService,
    JobCancelled,
    JobFailed,
    JobHandle,
    QueueFull,
    ServiceStopped,
)
from generation.spec import MAX_SEED, AvatarSpec, SpecError
from storage import Avatar, JobStatus, NotFound, Storage, User, avatars, guilds, jobs, jobstore, users

log = logging.getLogger(__name__)

HISTORY_PAGE_SIZE = 9  # a 3x3 grid in Discord
MAX_COUNT = 4
EXPORT_SIZES = (64, 2048)
MAX_PHOTO_BYTES = 10 * 1024 * 1024
PHOTO_LIMIT = 2  # photos one user may have in the making at a time (DM, /selfie, the message menu)
MAX_CONSOLE_NAME = 64


def check_text(*texts: str | None, lang: str = "en") -> None:
    """Refuse text the database or the engines cannot take: NUL bytes and invalid UTF-8 (lone surrogates,
    which is what Python makes of undecodable bytes). Runs at intake, before anything is queued."""
    for text in texts:
        if not text:
            continue
        if "\x00" in text:
            raise BadInput(t("text_nul", lang))
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise BadInput(t("text_utf8", lang)) from None


class Cooldown:
    """``rate`` generation requests per ``per_s`` seconds per user (sliding window). ``retry_after`` only
    looks; ``hit`` records an admitted request, so a refused request costs nothing."""

    def __init__(self, rate: int, per_s: float) -> None:
        if rate < 1 or per_s <= 0:
            raise ValueError("a cooldown needs rate >= 1 and per_s > 0")
        self.rate, self.per_s = rate, per_s
        self._hits: dict[str, deque[float]] = {}

    def retry_after(self, key: str, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        hits = self._hits.get(key)
        if not hits:
            return 0.0
        while hits and now - hits[0] >= self.per_s:
            hits.popleft()
        if len(hits) >= self.rate:
            return self.per_s - (now - hits[0])
        return 0.0

    def hit(self, key: str, now: float | None = None) -> None:
        self._hits.setdefault(key, deque()).append(time.monotonic() if now is None else now)


@dataclass(frozen=True)
class Actor:
    """Who asks, and from where. Exactly one of ``discord_id`` / ``console_name``."""

    discord_id: int | None = None
    console_name: str | None = None
    guild_id: int | None = None
    channel_id: int | None = None
    language: str = "en"
    # The channel a thread belongs to (allowed-channel rules follow it); None outside threads.
    parent_channel_id: int | None = None
    # An age-restricted (NSFW) channel: only there may a guild's "off" prompt policy apply.
    age_restricted: bool = False

    def __post_init__(self) -> None:
        if (self.discord_id is None) == (self.console_name is None):
            raise ValueError("an actor is a Discord user or a console user, not both or neither")
        if self.console_name is not None:
            if not self.console_name.strip():
                raise BadInput("the user name is empty.", "Pass --user NAME.")
            check_text(self.console_name)
            if len(self.console_name) > MAX_CONSOLE_NAME:
                raise BadInput(
                    f"the user name is {len(self.console_name)} characters long.",
                    f"Use at most {MAX_CONSOLE_NAME}.",
                )

    @property
    def key(self) -> str:
        return f"discord:{self.discord_id}" if self.discord_id is not None else f"console:{self.console_name}"

    @property
    def console(self) -> bool:
        """A ``chibify`` console user (hints name its options and settings, never Discord's)."""
        return self.console_name is not None

    def say(self, key: str, **values: Any) -> str:
        """A message in this actor's language (the console form for console users)."""
        return say(key, self.language, console=self.console, **values)


@dataclass(frozen=True)
class AvatarView:
    """An avatar as the adapters show it: plain values only."""

    id: str
    owner: str
    kind: str
    prompt: str
    spec: dict[str, Any]
    seed: int
    engine: str
    model: str | None
    parent: str | None
    width: int
    height: int
    favourite: bool
    created: datetime
    blob_key: str

    @classmethod
    def from_row(cls, avatar: Avatar, *, parent: str | None, owner: str) -> AvatarView:
        """The view of a stored avatar row; ``parent`` is the parent's public id, ``owner`` the user key."""
        return cls(
            id=avatar.public_id,
            owner=owner,
            kind=str(avatar.kind),
            prompt=avatar.prompt,
            spec=dict(avatar.spec or {}),
            seed=int(avatar.seed),
            engine=avatar.engine,
            model=avatar.model,
            parent=parent,
            width=avatar.width,
            height=avatar.height,
            favourite=avatar.favourite,
            created=avatar.created_at,
            blob_key=avatar.blob_key,
        )

    def to_json(self, image_path: str | None = None) -> dict[str, Any]:
        return {
            "id": self.id,
            "owner": self.owner,
            "kind": self.kind,
            "prompt": self.prompt,
            "spec": self.spec,
            "seed": self.seed,
            "engine": self.engine,
            "model": self.model,
            "parent": self.parent,
            "image": image_path,
            "width": self.width,
            "height": self.height,
            "favourite": self.favourite,
            "created": self.created.isoformat(),
        }


@dataclass
class Pending:
    """Submitted jobs and what the request meant; :meth:`Studio.finish` turns it into avatars."""

    handles: list[JobHandle]
    owner_id: int
    kind: str = "prompt"
    parse: ParseResult | None = None
    changes: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    actor: Actor | None = None  # who asked: the language (and console hints) of what finish() adds


@dataclass(frozen=True)
class Outcome:
    avatars: list[AvatarView]
    understood: list[Understood] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    faces: tuple[int, int] = (0, 0)  # a selfie: (faces in the photo, the one drawn, 1 = leftmost)


@dataclass(frozen=True)
class Finished:
    """A job finished in SQL and not yet delivered to its user (plain values, for the courier)."""

    job_id: int
    status: str  # done | failed
    error: str | None
    avatar: AvatarView | None  # None when failed, or when the avatar was deleted meanwhile
    delivery: Delivery


@dataclass(frozen=True)
class Removal:
    """A deleted avatar and the bot messages that showed it (the bot removes it from them).

    ``messages`` lists every one; ``remaining`` those that show other avatars too (a grid), with the
    avatars each still shows, in the grid's order: the Discord adapter re-draws such a message without the
    deleted one and deletes the others; an adapter that cannot re-draw deletes them all."""

    avatar: AvatarView
    messages: list[tuple[int, int]]
    remaining: dict[tuple[int, int], list[AvatarView]] = field(default_factory=dict)


@dataclass(frozen=True)
class Forgotten:
    avatars: int
    jobs: int
    images: int
    messages: list[tuple[int, int]] = field(default_factory=list)


@dataclass(frozen=True)
class HistoryView:
    items: list[AvatarView]
    page: int
    pages: int
    total: int
    snapshot: int


class Studio:
    """The use cases. Built once by the entry point with the storage and the generation service."""

    def __init__(
        self,
        storage: Storage,
        service: GenerationService | None,
        *,
        default_engine: str = "chibi",
        size: int = 512,
        cooldown: Cooldown | None = None,
        photo_limit: int = PHOTO_LIMIT,
    ) -> None:
        self.storage = storage
        self.service = service
        self.default_engine = default_engine
        self.size = size
        self.cooldown = cooldown
        self.photo_limit = photo_limit
        self.photos_in_flight: dict[str, int] = {}  # photos admitted and not finished, per user key
        self._counting: set[asyncio.Task[None]] = set()
        self._user_ids: dict[str, int] = {}
        self._admission_locks: dict[str, asyncio.Lock] = {}

    # --- people ---------------------------------------------------------------------------------------

    async def user_id(self, actor: Actor) -> int:
        """The actor's user row id (created on first sight)."""
        cached = self._user_ids.get(actor.key)
        if cached is not None:
            return cached
        async with self.storage.transaction() as s:
            user = await users.get_or_create_user(
                s, discord_id=actor.discord_id, console_name=actor.console_name
            )
        self._user_ids[actor.key] = user.id
        return user.id

    @staticmethod
    async def _existing_user_id(s: AsyncSession, actor: Actor) -> int | None:
        user = await users.get_user(s, discord_id=actor.discord_id, console_name=actor.console_name)
        return None if user is None else user.id

    async def policy_level(self, actor: Actor) -> str:
        """The guild's prompt policy; "off" applies only in age-restricted channels (standard elsewhere),
        and DMs are always standard."""
        if actor.guild_id is None:
            return "standard"
        level = await self._guild_policy(actor)
        return "standard" if level == "off" and not actor.age_restricted else level

    async def _guild_policy(self, actor: Actor) -> str:
        assert actor.guild_id is not None
        async with self.storage.transaction() as s:
            guild = await guilds.get_or_create_guild(s, actor.guild_id)
        return str(guild.prompt_policy)

    # --- making avatars -------------------------------------------------------------------------------

    async def submit_create(
        self,
        actor: Actor,
        prompt: str,
        *,
        count: int = 1,
        seed: int | None = None,
        engine: str | None = None,
        deliver: Delivery | None = None,
    ) -> Pending:
        """/avatar: check the prompt, parse it, queue ``count`` jobs (seeds seed, seed+1, ...)."""
        _check_count(actor, count)
        check_text(prompt, lang=actor.language)
        if seed is not None and not 0 <= seed <= MAX_SEED - MAX_COUNT:
            raise BadInput(actor.say("seed_range", seed=seed, max=MAX_SEED - MAX_COUNT))
        try:
            parsed = parse_prompt(prompt, seed=seed)  # first: a too-long prompt gets the length message
        except PromptError as exc:
            raise BadInput(_detail(actor, "bad_prompt", exc)) from None
        await self._check_policy(actor, prompt)
        specs = [parsed.spec.replace(seed=parsed.spec.seed + i) for i in range(count)]
        owner_id, handles = await self._submit(
            actor, specs, prompt=prompt, kind="prompt", engine=engine, deliver=deliver
        )
        return Pending(handles, owner_id, parse=parsed, notes=list(parsed.notes), actor=actor)

    async def submit_edit(
        self,
        actor: Actor,
        avatar_id: str | None,
        *,
        add: Sequence[str] = (),
        remove: Sequence[str] = (),
        expression: str | None = None,
        hair_color: str | None = None,
        eye_color: str | None = None,
        background: str | None = None,
        prompt: str | None = None,
        deliver: Delivery | None = None,
    ) -> Pending:
        """/edit: change the asked parts of an avatar (default: the latest), same seed; a child avatar."""
        check_text(
            avatar_id,
            *add,
            *remove,
            expression,
            hair_color,
            eye_color,
            background,
            prompt,
            lang=actor.language,
        )
        parent = await self._avatar_or_latest(actor, avatar_id)
        if not any((add, remove, expression, hair_color, eye_color, background, prompt)):
            raise BadInput(actor.say("nothing_to_change"))
        if prompt:
            await self._check_policy(actor, prompt)
        old = _spec_of(parent)
        try:
            result = apply_edit(
                old,
                add=add,
                remove=remove,
                expression=expression,
                hair_color=hair_color,
                eye_color=eye_color,
                background=background,
                prompt=prompt,
            )
        except (SpecError, PromptError) as exc:
            raise BadInput(_detail(actor, "cannot_change", exc)) from None
        if result.spec == old:
            detail = "; ".join(result.errors) or actor.say("try_other_change")
            raise BadInput(actor.say("no_change", detail=detail))
        # A painted (diffusion) avatar is edited on its own picture: only the changed part is repainted, the
        # rest stays pixel for pixel. The chibi and GAN engines redraw from the spec, which keeps them exact.
        painted = await self.storage.read_image(parent) if parent.engine == "diffusion" else None
        owner_id, handles = await self._submit(
            actor,
            [result.spec],
            prompt=parent.prompt if not prompt else f"{parent.prompt} | edit: {prompt}".strip(" |"),
            kind="edit",
            engine=parent.engine,
            parent=parent,
            deliver=deliver,
            init_image=painted,
        )
        return Pending(
            handles,
            owner_id,
            changes=result.changes or describe_changes(old, result.spec),
            notes=result.errors,
            actor=actor,
        )

    async def submit_variations(
        self, actor: Actor, avatar_id: str, *, count: int = 1, deliver: Delivery | None = None
    ) -> Pending:
        """Variations: the same spec (fixed parts stay), new seeds for the open choices."""
        _check_count(actor, count)
        parent = await self._avatar_or_latest(actor, avatar_id)
        spec = _spec_of(parent)
        specs = [variation(spec, _new_seed()) for _ in range(count)]
        owner_id, handles = await self._submit(
            actor,
            specs,
            prompt=parent.prompt,
            kind="variation",
            engine=parent.engine,
            parent=parent,
            deliver=deliver,
        )
        return Pending(handles, owner_id, actor=actor)

    async def submit_reroll(
        self, actor: Actor, avatar_id: str, *, count: int = 1, deliver: Delivery | None = None
    ) -> Pending:
        """Re-roll: the same prompt parsed again with a new seed (``count`` new takes: seeds s, s+1, ...)."""
        _check_count(actor, count)
        parent = await self._avatar_or_latest(actor, avatar_id)
        try:
            parsed = parse_prompt(parent.prompt, seed=_new_seed())
        except PromptError as exc:
            raise BadInput(_detail(actor, "bad_prompt", exc)) from None
        owner_id, handles = await self._submit(
            actor,
            [parsed.spec.replace(seed=parsed.spec.seed + i) for i in range(count)],
            prompt=parent.prompt,
            kind="reroll",
            engine=parent.engine,
            parent=parent,
            deliver=deliver,
        )
        return Pending(handles, owner_id, parse=parsed, actor=actor)

    async def submit_selfie(
        self,
        actor: Actor,
        photo: bytes,
        *,
        prompt: str = "",
        engine: str | None = None,
        deliver: Delivery | None = None,
        face: int | None = None,
    ) -> Pending:
        """/chibify: photo -> face analysis -> spec -> avatar. The photo is processed in memory, never kept.
        ``face`` picks a face counting from 1 on the left (default: the most prominent one)."""
        check_text(prompt, lang=actor.language)
        if face is not None and not 1 <= face <= MAX_FACES:
            raise BadInput(actor.say("bad_face", max=MAX_FACES))
        if prompt:
            await self._check_policy(actor, prompt)
        if len(photo) > MAX_PHOTO_BYTES:
            raise BadInput(actor.say("photo_too_big", size=len(photo) / 1e6))
        from generation.face.decode import PhotoError, decode_photo

        try:  # cheap checks here (format, size, pixel limit); the face analysis runs in the worker
            await asyncio.to_thread(decode_photo, photo)
        except PhotoError as exc:
            raise BadInput(_detail(actor, "bad_photo", exc)) from None
        base = AvatarSpec(seed=_new_seed())
        owner_id, handles = await self._submit(
            actor,
            [base],
            prompt=prompt,
            kind="selfie",
            engine=engine,
            deliver=deliver,
            init_image=photo,
            extra_meta=(("face_index", str(face - 1)),) if face is not None else (),
        )
        return Pending(handles, owner_id, kind="selfie", actor=actor)

    async def finish(self, pending: Pending) -> Outcome:
        """Wait for every job; each makes one avatar. Failed jobs are reported, the others still returned."""
        results = await asyncio.gather(*(h.result() for h in pending.handles), return_exceptions=True)
        made: list[str] = []
        failures: list[str] = []
        faces = (0, 0)
        speaker = pending.actor or Actor(console_name="-")
        for result in results:
            if isinstance(result, JobFailed):
                failures.append(note(result.reason, speaker.language))
            elif isinstance(result, JobCancelled):
                failures.append(speaker.say("cancelled_job"))
            elif isinstance(result, BaseException):
                raise result
            else:
                public_id = (result.stored or {}).get("public_id")
                if not public_id:
                    failures.append(note("the job finished without an avatar", speaker.language))
                    continue
                made.append(public_id)
                if result.face_count > 1:
                    faces = (result.face_count, result.face_used)
        async with self.storage.transaction() as s:
            views = [await self._view(s, await avatars.get_avatar(s, p, pending.owner_id)) for p in made]
        if not views and failures:
            if all(isinstance(r, JobCancelled) for r in results):
                raise GenerationFailed(speaker.say("cancelled"))
            raise GenerationFailed(
                failures[0] if pending.kind == "selfie" else speaker.say("could_not_make", reason=failures[0])
            )
        parse = pending.parse
        notes = list(pending.notes)
        if pending.kind == "selfie" and views:
            read = _photo_read(views[0], speaker.language)
            if read:
                notes.insert(0, speaker.say("photo_read", read=read))
        if faces[0] > 1:
            notes.insert(0, speaker.say("faces_found", count=faces[0], used=faces[1]))
        return Outcome(
            avatars=views,
            understood=list(parse.understood) if parse else [],
            ignored=list(parse.ignored) if parse else [],
            removed=list(parse.removed) if parse else [],
            changes=pending.changes,
            notes=notes,
            failures=failures,
            faces=faces,
        )

    # --- reading --------------------------------------------------------------------------------------

    async def history(
        self, actor: Actor, *, page: int = 1, favourites: bool = False, snapshot: int | None = None
    ) -> HistoryView:
        if page < 1:
            raise BadInput(actor.say("page_start", page=page))
        async with self.storage.transaction() as s:
            uid = await self._existing_user_id(s, actor)
            if uid is None:
                return HistoryView(items=[], page=1, pages=1, total=0, snapshot=0)
            hp = await avatars.history(
                s, uid, page=page, page_size=HISTORY_PAGE_SIZE, favourites_only=favourites, snapshot=snapshot
            )
            items = [await self._view(s, a) for a in hp.items]
        if page > hp.pages and hp.total:
            raise BadInput(actor.say("page_range", page=page, pages=hp.pages))
        return HistoryView(
            items=items,
            page=page,
            pages=hp.pages,
            total=hp.total,
            snapshot=hp.snapshot,
        )

    async def show(self, actor: Actor, avatar_id: str) -> tuple[AvatarView, list[AvatarView]]:
        """The avatar and its lineage (root first, this one last)."""
        async with self.storage.transaction() as s:
            uid = await self._require_user(s, actor)
            try:
                chain = await avatars.lineage(s, avatar_id, uid)
            except NotFound:
                raise _not_found(actor, avatar_id) from None
            views = [await self._view(s, a) for a in chain]
        return views[-1], views

    async def image(self, actor: Actor, avatar_id: str) -> tuple[AvatarView, bytes]:
        async with self.storage.transaction() as s:
            avatar = await self._get(s, actor, avatar_id)
            view = await self._view(s, avatar)
        return view, await self.storage.read_image(avatar)

    async def image_path(self, avatar: AvatarView) -> str | None:
        path = await self.storage.blob_path(avatar.blob_key)
        return str(path) if path is not None else None

    async def export(self, actor: Actor, avatar_id: str, fmt: str, *, size: int = 512) -> dict[str, bytes]:
        """Files named by their suggested file name: any of ``generation.exports.FORMATS`` (png,
        transparent, circle, svg, gif, apng, stickers, pngtuber)."""
        from generation import exports

        if fmt not in exports.FORMATS:
            raise BadInput(actor.say("export_unknown", format=fmt))
        if not EXPORT_SIZES[0] <= size <= EXPORT_SIZES[1]:
            raise BadInput(actor.say("size_range", size=size, low=EXPORT_SIZES[0], high=EXPORT_SIZES[1]))
        async with self.storage.transaction() as s:
            avatar = await self._get(s, actor, avatar_id)
            view = await self._view(s, avatar)
        if view.engine != "chibi" and fmt != "png":
            raise BadInput(actor.say("export_needs_chibi", format=fmt))
        spec = _spec_of(avatar)
        params = {"prompt": view.prompt}
        try:
            return await asyncio.to_thread(exports.export_files, spec, fmt, size, view.id, params)
        except ValueError as exc:
            raise BadInput(str(exc)) from None

    # --- changing -------------------------------------------------------------------------------------

    async def favourite(self, actor: Actor, avatar_id: str, on: bool = True) -> AvatarView:
        async with self.storage.transaction() as s:
            uid = await self._require_user(s, actor)
            try:
                avatar = await avatars.set_favourite(s, avatar_id, uid, on)
            except NotFound:
                raise _not_found(actor, avatar_id) from None
            return await self._view(s, avatar)

    async def delete(self, actor: Actor, avatar_id: str) -> Removal:
        """Delete one avatar; returns it with the messages that showed it (for the adapter to remove)."""
        async with self.storage.transaction() as s:
            uid = await self._require_user(s, actor)
            try:
                avatar = await avatars.soft_delete(s, avatar_id, uid)
            except NotFound:
                raise _not_found(actor, avatar_id) from None
            messages = await jobs.messages_for_avatars(s, [avatar.id])
            remaining = await self._still_shown(s, avatar, messages)
            return Removal(await self._view(s, avatar), list(messages), remaining)

    async def _still_shown(
        self, s: AsyncSession, deleted: Avatar, messages: Sequence[tuple[int, int]]
    ) -> dict[tuple[int, int], list[AvatarView]]:
        """Of the messages that showed ``deleted``, those that show the owner's other avatars too (the
        other jobs of its request that list the message), with those avatars in job order."""
        if not messages:
            return {}
        remaining: dict[tuple[int, int], list[AvatarView]] = {}
        for avatar_id, shown_on in await jobs.request_mates(s, deleted.id):
            other = await avatars.get_avatar_by_id(s, avatar_id)
            if other is None or other.deleted_at is not None or other.owner_id != deleted.owner_id:
                continue
            pairs = set(shown_on)
            view: AvatarView | None = None
            for message in messages:
                if message in pairs:
                    view = view or await self._view(s, other)
                    remaining.setdefault(message, []).append(view)
        return remaining

    async def forget(self, actor: Actor) -> Forgotten:
        """Delete every row and image of the user. Returns what was removed, and the bot messages that
        showed the user's avatars (read before the rows went)."""
        async with self.storage.transaction() as s:
            uid = await self._existing_user_id(s, actor)
        if uid is None:
            return Forgotten(0, 0, 0)
        result = await self.storage.forget_user(uid)
        self._user_ids.pop(actor.key, None)
        return Forgotten(result.avatars, result.jobs, result.blobs, list(result.messages))

    # --- delivery (the courier in bot/delivery.py) -----------------------------------------------------

    async def undelivered(self) -> list[Finished]:
        """Jobs that finished (done or failed) but whose result never reached the user, oldest first."""
        found: list[Finished] = []
        async with self.storage.transaction() as s:
            for job in await jobs.undelivered(s):
                raw = jobstore.delivery_of(job)
                delivery = Delivery.from_json(raw) if raw else Delivery(group=f"job-{job.id}")
                avatar: AvatarView | None = None
                if job.avatar_id is not None:
                    row = await avatars.get_avatar_by_id(s, job.avatar_id)
                    if row is not None and row.deleted_at is None:
                        avatar = await self._view(s, row)
                found.append(Finished(job.id, str(job.status), job.error, avatar, delivery))
        return found

    async def mark_delivered(self, job_ids: Sequence[int], messages: Sequence[tuple[int, int]]) -> None:
        """Record that Discord accepted the message(s) for these jobs; forgets their interaction token."""
        async with self.storage.transaction() as s:
            await jobs.mark_delivered(s, list(job_ids), list(messages))

    async def image_bytes(self, avatar: AvatarView) -> bytes:
        return await self.storage.read_blob(avatar.blob_key)

    async def admissible(self, actor: Actor, count: int = 1, *, photos: int = 0) -> None:
        """The gate's own checks without queueing anything: for adapters that must download something
        (a photo) before they can submit. The submission itself is checked again, whole."""
        rules = await self._guild_rules(actor)
        if rules is not None:
            self._check_channel(actor, rules)
            await self._check_daily(actor, rules, count)
        self._check_cooldown(actor)
        self._check_photos(actor, photos)

    def _check_photos(self, actor: Actor, photos: int) -> None:
        if photos and self.photos_in_flight.get(actor.key, 0) + photos > self.photo_limit:
            raise Limited(t("photo_limit", actor.language, limit=self.photo_limit))

    # --- helpers --------------------------------------------------------------------------------------

    async def _check_policy(self, actor: Actor, text: str) -> None:
        verdict = check_prompt(text, await self.policy_level(actor))
        if not verdict.allowed:
            zh = actor.language.lower().startswith("zh") and verdict.reason_zh
            raise Refused(verdict.reason_zh if zh else verdict.reason)

    async def _submit(
        self,
        actor: Actor,
        specs: Sequence[AvatarSpec],
        *,
        prompt: str,
        kind: str,
        engine: str | None,
        parent: Avatar | None = None,
        deliver: Delivery | None = None,
        init_image: bytes | None = None,
        extra_meta: tuple[tuple[str, str], ...] = (),
    ) -> tuple[int, list[JobHandle]]:
        """The one admission gate: every way of making work ends here (slash commands, buttons, the edit
        modal, DM photos, the message menu, the console). The whole request (all ``len(specs)`` jobs) is
        checked against every limit at once and admitted whole or not at all."""
        if self.service is None:
            raise Unavailable(actor.say("no_generation"))
        async with self._admission(actor.key):
            rules = await self._guild_rules(actor)
            if rules is not None:
                self._check_channel(actor, rules)
                await self._check_daily(actor, rules, len(specs))
            self._check_cooldown(actor)
            photos = len(specs) if init_image is not None else 0
            self._check_photos(actor, photos)
            engine = engine or (rules.get("engine") if rules else None) or self.default_engine
            if engine not in self.service.engine_names:
                raise Unavailable(_engine_missing(actor, engine, self.service.engine_names))
            owner_id = await self.user_id(actor)  # the row exists before the job refers to it
            meta: tuple[tuple[str, str], ...] = (("parent", parent.public_id),) if parent is not None else ()
            meta += extra_meta
            requests = [
                GenerationRequest(
                    user_key=actor.key,
                    spec=spec.to_json(),
                    engine=engine,
                    size=self.size,
                    prompt=prompt,
                    kind=kind,
                    parent_spec=parent.spec if parent is not None else None,
                    init_image=init_image,
                    metadata=meta,
                )
                for spec in specs
            ]
            member_limit = rules.get("max_queued_per_user") if rules else None
            try:
                handles = await self.service.submit_many(requests, deliver=deliver, user_limit=member_limit)
            except QueueFull as exc:
                if exc.scope == "user" and member_limit is not None:
                    raise Limited(t("queue_limit", actor.language, limit=member_limit)) from None
                raise Busy(actor.say("busy")) from None
            except ServiceStopped:
                raise Unavailable(actor.say("stopping")) from None
            if self.cooldown is not None:
                self.cooldown.hit(actor.key)
            if photos:
                self._count_photos(actor.key, handles)
        return owner_id, handles

    def _count_photos(self, key: str, handles: Sequence[JobHandle]) -> None:
        """Count the photos in the making until each job ends, however it ends."""
        self.photos_in_flight[key] = self.photos_in_flight.get(key, 0) + len(handles)

        async def count_out(handle: JobHandle) -> None:
            with contextlib.suppress(BaseException):
                await handle.result()
            left = self.photos_in_flight.get(key, 1) - 1
            if left > 0:
                self.photos_in_flight[key] = left
            else:
                self.photos_in_flight.pop(key, None)

        for handle in handles:
            task = asyncio.get_running_loop().create_task(count_out(handle))
            self._counting.add(task)
            task.add_done_callback(self._counting.discard)

    @asynccontextmanager
    async def _admission(self, key: str) -> AsyncIterator[None]:
        """One admission at a time per user, so a user's concurrent requests are counted one after the
        other against the daily limit (the service's caps are atomic on their own)."""
        lock = self._admission_locks.setdefault(key, asyncio.Lock())
        try:
            async with lock:
                yield
        finally:
            if not lock.locked() and self._admission_locks.get(key) is lock:
                del self._admission_locks[key]

    async def _guild_rules(self, actor: Actor) -> dict[str, Any] | None:
        return await self.guild_config(actor.guild_id) if actor.guild_id is not None else None

    @staticmethod
    def _check_channel(actor: Actor, rules: dict[str, Any]) -> None:
        allowed = rules["allowed_channels"]
        if allowed and actor.channel_id not in allowed and actor.parent_channel_id not in allowed:
            channels = channel_list(allowed, actor.language)
            raise Limited(t("channel_not_allowed", actor.language, channels=channels))

    async def _check_daily(self, actor: Actor, rules: dict[str, Any], count: int) -> None:
        daily = rules["per_user_daily_limit"]
        if daily and actor.guild_id is not None:
            if await self.jobs_today(actor, actor.guild_id) + count > daily:
                raise Limited(t("daily_limit", actor.language, limit=daily))

    def _check_cooldown(self, actor: Actor) -> None:
        if self.cooldown is None:
            return
        wait = self.cooldown.retry_after(actor.key)
        if wait > 0:
            raise Limited(t("cooldown", actor.language, seconds=max(1, round(wait))))

    async def _require_user(self, s: AsyncSession, actor: Actor) -> int:
        uid = await self._existing_user_id(s, actor)
        if uid is None:
            raise NotFoundError(actor.say("no_avatars"))
        return uid

    async def _get(self, s: AsyncSession, actor: Actor, avatar_id: str) -> Avatar:
        uid = await self._require_user(s, actor)
        try:
            return await avatars.get_avatar(s, avatar_id, uid)
        except NotFound:
            raise _not_found(actor, avatar_id) from None

    async def _avatar_or_latest(self, actor: Actor, avatar_id: str | None) -> Avatar:
        async with self.storage.transaction() as s:
            if avatar_id:
                return await self._get(s, actor, avatar_id)
            uid = await self._require_user(s, actor)
            latest = await avatars.latest_avatar(s, uid)
        if latest is None:
            raise NotFoundError(actor.say("no_avatars"))
        return latest

    async def _view(self, s: AsyncSession, avatar: Avatar) -> AvatarView:
        parent_public: str | None = None
        if avatar.parent_id is not None:
            parent = await avatars.get_avatar_by_id(s, avatar.parent_id)
            parent_public = parent.public_id if parent is not None else None
        owner = await self._owner_label(s, avatar.owner_id)
        return AvatarView.from_row(avatar, parent=parent_public, owner=owner)

    async def _owner_label(self, s: AsyncSession, user_id: int) -> str:
        for key, uid in self._user_ids.items():
            if uid == user_id:
                return key
        user = await users.get_user_by_id(s, user_id)
        if user is None:
            return f"user:{user_id}"
        key = f"discord:{user.discord_id}" if user.discord_id is not None else f"console:{user.console_name}"
        self._user_ids[key] = user_id
        return key

    # --- added for the Discord adapter ---
    # Plain-value reads and writes the bot needs beyond the console's use cases: preferences, guild
    # configuration, avatar autocomplete, and the selfie path through generation.face (in memory).

    async def jobs_today(self, actor: Actor, guild_id: int) -> int:
        """Jobs the user asked for in this guild in the last 24 hours (failed and cancelled ones don't count)."""
        async with self.storage.transaction() as s:
            uid = await self._existing_user_id(s, actor)
            if uid is None:
                return 0
            since = datetime.now(UTC) - timedelta(days=1)
            counted = (JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.DONE)
            return await jobs.count_jobs_since(s, uid, since, guild_id=guild_id, statuses=counted)

    async def preferences(self, actor: Actor) -> dict[str, Any]:
        """The user's settings (defaults when the user has never been seen; nothing is created)."""
        async with self.storage.transaction() as s:
            user = await users.get_user(s, discord_id=actor.discord_id, console_name=actor.console_name)
        return self._preferences_of(user)

    @staticmethod
    def _preferences_of(user: User | None) -> dict[str, Any]:
        if user is None:
            return {"language": "en", "public_results": False, "default_style": "chibi"}
        return {
            "language": user.language,
            "public_results": bool(user.public_results),
            "default_style": user.default_style,
        }

    async def update_preferences(
        self,
        actor: Actor,
        *,
        language: str | None = None,
        public_results: bool | None = None,
        default_style: str | None = None,
    ) -> dict[str, Any]:
        changes: dict[str, Any] = {}
        if language is not None:
            changes["language"] = language
        if public_results is not None:
            changes["public_results"] = public_results
        if default_style is not None:
            changes["default_style"] = default_style
        async with self.storage.transaction() as s:
            user = await users.get_or_create_user(
                s, discord_id=actor.discord_id, console_name=actor.console_name
            )
            if changes:
                try:
                    user = await users.update_user(s, user, **changes)
                except ValueError as exc:
                    raise BadInput(str(exc)) from None
        self._user_ids[actor.key] = user.id
        return self._preferences_of(user)

    async def guild_config(self, guild_id: int) -> dict[str, Any]:
        async with self.storage.transaction() as s:
            guild = await guilds.get_or_create_guild(s, guild_id)
        return self._guild_dict(guild)

    async def update_guild_config(
        self, guild_id: int, *, actor: Actor | None = None, **changes: Any
    ) -> dict[str, Any]:
        """Admins only (the adapter checks the permission): allowed channels, limits, policy, engine."""
        if "engine" in changes and changes["engine"] is not None and self.service is not None:
            if changes["engine"] not in self.service.engine_names:
                who = actor or Actor(console_name="-")
                raise BadInput(_engine_missing(who, changes["engine"], self.service.engine_names))
        try:
            async with self.storage.transaction() as s:
                guild = await guilds.update_guild(s, guild_id, **changes)
        except ValueError as exc:
            raise BadInput(str(exc)) from None
        return self._guild_dict(guild)

    async def recent_avatars(self, actor: Actor, partial: str = "", limit: int = 25) -> list[AvatarView]:
        """Autocomplete for avatar ids: the newest avatars whose id or prompt contains ``partial``."""
        needle = partial.strip().lower()
        found: list[AvatarView] = []
        async with self.storage.transaction() as s:
            uid = await self._existing_user_id(s, actor)
            if uid is None:
                return []
            hp = await avatars.history(s, uid, page=1, page_size=50)
            for avatar in hp.items:
                if needle and needle not in avatar.public_id.lower() and needle not in avatar.prompt.lower():
                    continue
                found.append(await self._view(s, avatar))
                if len(found) >= limit:
                    break
        return found

    @staticmethod
    def _guild_dict(guild: Any) -> dict[str, Any]:
        return {
            "allowed_channels": [int(c) for c in guild.allowed_channels or []],
            "per_user_daily_limit": guild.per_user_daily_limit,
            "max_queued_per_user": guild.max_queued_per_user,
            "prompt_policy": str(guild.prompt_policy),
            "engine": guild.engine,
        }


def _spec_of(avatar: Avatar) -> AvatarSpec:
    try:
        return AvatarSpec.from_json(dict(avatar.spec or {}))
    except SpecError as exc:
        raise GenerationFailed(
            f"avatar {avatar.public_id} has a spec this version cannot read: {exc}"
        ) from None


# The formats the web offers for download (the drawing lives in generation/exports.py, which also makes
# the PNGTuber set the bot and the console offer).
EXPORT_FORMATS = ("png", "transparent", "circle", "svg", "gif", "apng", "stickers")
MAX_FACES = 20  # a selfie's face number (1 = leftmost) is checked against the photo by the analysis


def _check_count(actor: Actor, count: int) -> None:
    if not 1 <= count <= MAX_COUNT:
        raise BadInput(actor.say("count_range", count=count, max=MAX_COUNT))


def _photo_read(view: AvatarView, language: str) -> str:
    """What the selfie analysis read, in words ("short black curly hair, beard, brown eyes, dark suit"),
    from the stored spec (no analysis code is loaded in the bot)."""
    from generation.face.reading import describe, reading_from_spec

    try:
        spec = AvatarSpec.from_json(view.spec)
    except SpecError:
        return ""
    return describe(reading_from_spec(spec), "zh" if language == "zh" else "en")


def _detail(actor: Actor, key: str, exc: Exception) -> str:
    """A generation error (prompt, spec, edit, photo) framed in the actor's language; English readers get
    the detail alone, as the console always did."""
    detail = str(exc)
    if actor.language != "zh":
        return detail
    translated = note(detail, actor.language)
    return translated if translated != detail else actor.say(key, detail=detail)


def _engine_missing(actor: Actor, engine: str, running: Any) -> str:
    """The engine is not running here: what is, and (on the console) the setting that starts it."""
    setting_key = f"engine_setting_{engine}"
    from bot.messages import MESSAGES

    if setting_key in MESSAGES:
        setting = t(setting_key, actor.language)
    else:
        setting = t("engine_setting_other", actor.language, engine=engine)
    return actor.say(
        "engine_unavailable", engine=engine, available=", ".join(sorted(running)), setting=setting
    )


def channel_list(channel_ids: Sequence[int], language: str, shown: int = 10) -> str:
    """Channel mentions for a message: the first ``shown``, then "and N more" (a list of hundreds of
    channels would pass Discord's 2,000-character limit)."""
    mentions = " ".join(f"<#{c}>" for c in channel_ids[:shown])
    more = len(channel_ids) - shown
    return t("and_more", language, shown=mentions, more=more) if more > 0 else mentions


def _new_seed() -> int:
    return random.SystemRandom().randrange(0, 2**31)


def _not_found(actor: Actor, avatar_id: str) -> NotFoundError:
    return NotFoundError(actor.say("no_such_avatar", id=avatar_id))
