"""Durable delivery: every finished job reaches its user once, across crashes and expired tokens.

A job's life ends with *delivered*, recorded in SQL only after Discord accepted the message. The target
(:class:`generation.jobs.Delivery`: user, channel, public or not, language, interaction token and its expiry)
is stored with the job when it is queued, so a restarted bot can finish what a crashed one began.

Where a result goes, in order:

1. the original (deferred, "thinking…") response, while its interaction token lives: private results
   replace it; public results are posted to the channel and the original points to them;
2. otherwise a post in the channel with a mention (public results), else a DM.

A token counts as gone when ``interaction.is_expired()`` says so, or Discord answers 401/50027 (Invalid
Webhook Token), 404/10015 (Unknown Webhook) or 10062 (Unknown interaction): the courier falls back at once.
Channel posts and DMs carry a nonce derived from the request (``enforce_nonce``), so a delivery repeated after
a crash between Discord's answer and the SQL update shows one message, not two. Failures are delivered the
same way as pictures.

:class:`Courier` also sweeps: on start and every ``sweep_every_s`` it delivers whatever is finished in SQL but
not delivered (a crash, a restart, a transient Discord error).
"""

from __future__ import annotations

import asyncio
import io
import logging
import secrets
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

import discord

from bot.messages import note, t
from bot.render import grid, result_embed
from bot.studio import AvatarView, Finished, Outcome

if TYPE_CHECKING:
    from bot.client import ChibifyBot, Who
    from generation.jobs import Delivery
    from generation.service import JobHandle

log = logging.getLogger(__name__)

TOKEN_LIFETIME = timedelta(minutes=15)
TOKEN_GONE_CODES = frozenset({50027, 10015, 10062})
Message = tuple[int, int]  # (channel id, message id)


def token_gone(exc: discord.HTTPException) -> bool:
    """Discord's answers for an interaction token that can no longer be used."""
    return exc.status == 401 or exc.code in TOKEN_GONE_CODES


def new_group() -> str:
    """Ties the jobs of one request together (one grid, one message); also the message nonce."""
    return secrets.token_hex(10)


def nonce_of(group: str) -> str:
    return f"c{group}"[:25]


@dataclass
class Post:
    """One message: text, and optionally the result picture with its embed and buttons."""

    content: str
    embed: discord.Embed | None = None
    image: tuple[bytes, str] | None = None
    view: discord.ui.View | None = None

    def file(self) -> discord.File | None:
        return discord.File(io.BytesIO(self.image[0]), self.image[1]) if self.image else None


@dataclass
class Sent:
    """Where a post went: public messages (for delete and /forget) and how it was delivered."""

    messages: list[Message] = field(default_factory=list)
    how: str = "original"  # original | channel | followup | dm | nowhere


class Courier:
    def __init__(self, bot: ChibifyBot, *, sweep_every_s: float = 30.0) -> None:
        self.bot = bot
        self.sweep_every_s = sweep_every_s
        self.live: set[str] = set()  # groups an interaction is delivering right now
        self._sweep_lock = asyncio.Lock()

    @property
    def client(self) -> Any:
        return self.bot

    # --- the live path -----------------------------------------------------------------------------------

    async def send(
        self,
        target: Delivery,
        post: Post,
        *,
        interaction: discord.Interaction | None = None,
        job_ids: Sequence[int] = (),
    ) -> Sent:
        """Deliver ``post`` to ``target`` and record it in SQL (when ``job_ids`` are given)."""
        sent = await self._send(target, post, interaction)
        if job_ids:
            await self.bot.studio.mark_delivered(job_ids, sent.messages)
        return sent

    async def edit_original(
        self, target: Delivery, interaction: discord.Interaction | None, **fields: Any
    ) -> bool:
        """Edit the deferred response; False when the token is gone (nothing to edit any more)."""
        if not self._token_alive(target, interaction):
            return False
        try:
            if interaction is not None:
                await interaction.edit_original_response(**fields)
            else:
                await self._webhook(target).edit_message(cast(int, "@original"), **fields)
            return True
        except discord.HTTPException as exc:
            if token_gone(exc):
                log.info("interaction token gone (%s %s); falling back", exc.status, exc.code)
                return False
            raise

    async def _send(self, target: Delivery, post: Post, interaction: discord.Interaction | None) -> Sent:
        language = target.language
        if self._token_alive(target, interaction):
            try:
                if not target.public:
                    if await self.edit_original(
                        target,
                        interaction,
                        content=post.content if post.image is None else None,
                        embed=post.embed,
                        attachments=[f] if (f := post.file()) else [],
                        view=post.view,
                    ):
                        return Sent(how="original")
                    return await self._dm(target, post)
                sent = await self._post_public(target, post, interaction=interaction)
                link = _jump(target, sent)
                if link:
                    pointer = t("posted_here", language, link=link)
                else:
                    pointer = t("sent_dm" if sent.how == "dm" else "in_history", language)
                try:
                    await self.edit_original(
                        target, interaction, content=pointer, embed=None, attachments=[], view=None
                    )
                except discord.HTTPException as exc:
                    log.info("could not point the original response to the result: %s", exc)
                return sent
            except discord.HTTPException as exc:
                if not token_gone(exc):
                    log.warning("delivery to the original response failed (%s); falling back", exc)
        return await self._post_public(target, post) if target.public else await self._dm(target, post)

    async def _post_public(
        self, target: Delivery, post: Post, *, interaction: discord.Interaction | None = None
    ) -> Sent:
        """A channel post with a mention (its nonce makes a repeat show once); when the channel refuses it
        (no access, e.g. a user-installed app), a follow-up while the token lives, else a DM."""
        if target.channel_id is not None:
            try:
                message = await self.client.get_partial_messageable(target.channel_id).send(
                    **self._kwargs(target, post, mention=True)
                )
                return Sent([(target.channel_id, message.id)], how="channel")
            except discord.HTTPException as exc:
                log.warning("could not post to channel %s (%s)", target.channel_id, exc)
        if self._token_alive(target, interaction):
            kwargs = self._kwargs(target, post, mention=True)
            kwargs.pop("nonce")
            try:
                # A follow-up to a response still "thinking" would become that (private) response itself:
                # finish it first, so the follow-up is a message of its own that everyone sees.
                await self.edit_original(
                    target, interaction, content=t("posting", target.language), view=None
                )
                webhook = interaction.followup if interaction is not None else self._webhook(target)
                message = await webhook.send(wait=True, **kwargs)
                return Sent([(message.channel.id, message.id)], how="followup")
            except discord.HTTPException as exc:
                if not token_gone(exc):
                    raise
        return await self._dm(target, post)

    async def _dm(self, target: Delivery, post: Post) -> Sent:
        if target.user_id is None:
            return Sent(how="nowhere")
        try:
            channel = await self.client.create_dm(discord.Object(target.user_id))
            message = await channel.send(**self._kwargs(target, post, mention=False))
            return Sent([(channel.id, message.id)], how="dm")
        except discord.Forbidden as exc:  # DMs closed: the avatar is still in the user's history
            log.warning("user %s takes no DMs (%s); result left in the history", target.user_id, exc)
            return Sent(how="nowhere")

    def _kwargs(self, target: Delivery, post: Post, *, mention: bool) -> dict[str, Any]:
        content = post.content
        if mention and target.user_id is not None and f"<@{target.user_id}>" not in content:
            content = f"<@{target.user_id}> {content}"
        kwargs: dict[str, Any] = {
            "content": content,
            "nonce": nonce_of(target.group),
            "allowed_mentions": discord.AllowedMentions(users=True, everyone=False, roles=False),
        }
        if post.embed is not None:
            kwargs["embed"] = post.embed
        if (file := post.file()) is not None:
            kwargs["file"] = file
        if post.view is not None:
            kwargs["view"] = post.view
        return kwargs

    def _token_alive(self, target: Delivery, interaction: discord.Interaction | None) -> bool:
        if interaction is not None:
            return not interaction.is_expired()
        if not target.interaction_token or target.application_id is None:
            return False
        expires = target.token_expires_at
        return expires is not None and datetime.now(UTC) < expires - timedelta(seconds=5)

    def _webhook(self, target: Delivery) -> discord.Webhook:
        assert target.application_id is not None and target.interaction_token
        return discord.Webhook.partial(target.application_id, target.interaction_token, client=self.client)

    # --- the sweep: finished in SQL, not delivered -------------------------------------------------------

    async def sweep(self, waiting: Iterable[JobHandle] = ()) -> int:
        """Deliver every finished, undelivered job whose request is not being delivered live and whose
        other jobs are all finished. Returns how many jobs were delivered."""
        busy_groups = {h.deliver.group for h in waiting if h.deliver is not None and not h.done()}
        delivered = 0
        async with self._sweep_lock:
            rows = await self.bot.studio.undelivered()
            groups: dict[str, list[Finished]] = defaultdict(list)
            for row in rows:
                groups[row.delivery.group or f"job-{row.job_id}"].append(row)
            for group, jobs in groups.items():
                if group in self.live or group in busy_groups:
                    continue
                try:
                    await self._deliver_group(jobs)
                    delivered += len(jobs)
                except discord.HTTPException as exc:
                    log.warning("delivery of jobs %s failed (%s); will retry", [j.job_id for j in jobs], exc)
        if delivered:
            log.info("delivered %d finished jobs from the database", delivered)
        return delivered

    async def _deliver_group(self, jobs: list[Finished]) -> None:
        target = jobs[0].delivery
        language = target.language
        avatars: list[AvatarView] = []
        failures: list[str] = []
        for job in jobs:
            if job.avatar is not None:
                avatars.append(job.avatar)
            elif job.status == "failed":
                failures.append(note(job.error or "it failed", language))
        mention = f"<@{target.user_id}>" if target.user_id is not None else ""
        late = not self._token_alive(target, None)
        if avatars:
            outcome = Outcome(avatars=avatars, failures=failures)
            post = await self.result_post(outcome, language, late=late, mention=mention, recovered=True)
        elif failures:
            post = Post(t("recovered_failed", language, mention=mention, reason=failures[0]).strip())
        else:  # the avatars were deleted meanwhile: nothing to show
            post = None
        sent = await self._send(target, post, None) if post is not None else Sent(how="nowhere")
        await self.bot.studio.mark_delivered([j.job_id for j in jobs], sent.messages)

    async def result_post(
        self, outcome: Outcome, language: str, *, late: bool, mention: str, recovered: bool = False
    ) -> Post:
        from bot.views.results import result_view

        images = [await self.bot.studio.image_bytes(a) for a in outcome.avatars]
        if len(images) == 1:
            data, name = images[0], f"chibify-{outcome.avatars[0].id}.png"
        else:
            data, name = await asyncio.to_thread(grid, images), "chibify-grid.png"
        key = "recovered" if recovered else ("made_late" if late else "made")
        return Post(
            content=t(key, language, mention=mention).strip(),
            embed=result_embed(outcome, language, name),
            image=(data, name),
            view=result_view(outcome.avatars, language),
        )

    async def run_sweeps(self, recovered: Sequence[JobHandle], ready: Callable[[], Awaitable[Any]]) -> None:
        """Background task: after login, deliver what a previous run left, then sweep now and then."""
        await ready()
        waiting = list(recovered)
        await self.sweep(waiting)
        while True:
            pending = [h for h in waiting if not h.done()]
            if pending:
                await asyncio.wait(
                    [asyncio.ensure_future(h.result()) for h in pending], timeout=self.sweep_every_s
                )
            else:
                await asyncio.sleep(self.sweep_every_s)
            waiting = [h for h in waiting if not h.done()]
            try:
                await self.sweep(waiting)
            except Exception:
                log.exception("delivery sweep failed; trying again later")

    # --- removing what was posted ------------------------------------------------------------------------

    async def delete_messages(self, messages: Iterable[Message]) -> int:
        """Delete the bot's own messages (channel posts and DMs); returns how many this call removed."""
        removed = 0
        for channel_id, message_id in dict.fromkeys(messages):
            try:
                await self.client.http.delete_message(channel_id, message_id)
                removed += 1
            except discord.NotFound:
                pass  # already gone (deleted by hand, or with an avatar deleted earlier)
            except discord.HTTPException as exc:
                log.warning("could not delete message %s in %s: %s", message_id, channel_id, exc)
        return removed


def _jump(target: Delivery, sent: Sent) -> str | None:
    if not sent.messages or sent.how not in ("channel", "followup"):
        return None
    channel_id, message_id = sent.messages[0]
    scope = target.guild_id if target.guild_id is not None else "@me"
    return f"https://discord.com/channels/{scope}/{channel_id}/{message_id}"


def delivery_for(interaction: discord.Interaction, who: Who, *, public: bool | None = None) -> Delivery:
    """The target of a request made through an interaction (stored with its jobs); ``public`` overrides
    the user's setting (a DM conversation keeps its results as plain messages)."""
    from generation.jobs import Delivery

    created = interaction.created_at
    return Delivery(
        group=new_group(),
        user_id=who.user_id,
        channel_id=interaction.channel_id,
        guild_id=interaction.guild_id,
        public=who.public if public is None else public,
        language=who.language,
        application_id=interaction.application_id,
        interaction_token=interaction.token,
        token_expires_at=created + TOKEN_LIFETIME,
    )
