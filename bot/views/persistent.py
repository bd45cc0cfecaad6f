"""What every persistent control shares: the guard around its handler, the owner check, and
:class:`PersistentButton`, the one base of the DynamicItem buttons.

A persistent button says, once, at class creation: its custom_id ``prefix`` and the id ``fields`` that follow
it (``prefix:field1:field2``, each a regex, optionally with a parser). The base builds the custom_id and the
DynamicItem template from them, parses a clicked custom_id back into the same fields (``from_custom_id``), and
draws the button from a :class:`Look` (a message key, a style, an emoji). Subclasses write only ``run``.

Custom ids are a contract with messages already posted: a new format must still parse the old ones
(tests/bot/test_custom_ids.py holds literal ids from every version).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, Self, cast

import discord

from bot.i18n import t

if TYPE_CHECKING:
    from bot.client import ChibifyBot


def bot_of(interaction: discord.Interaction) -> ChibifyBot:
    return cast("ChibifyBot", interaction.client)


async def guarded(interaction: discord.Interaction, run: Callable[[], Awaitable[None]]) -> None:
    """Run a component or modal handler; errors become the same ephemeral replies as tree.on_error."""
    try:
        await run()
    except Exception as exc:  # one place turns every error into a short reply
        await bot_of(interaction).report_error(interaction, exc)


def owner_mismatch(interaction: discord.Interaction) -> bool | None:
    """True when the message clearly belongs to someone else, False when to this user, None if unknown."""
    message = interaction.message
    if message is None:
        return None
    meta = message.interaction_metadata
    if meta is not None and message.author.id == interaction.client.application_id:
        return meta.user.id != interaction.user.id
    mentioned = message.raw_mentions
    if mentioned:
        return interaction.user.id not in mentioned
    return None


def quick_language(interaction: discord.Interaction) -> str:
    """The reader's language without touching the database (cached preference, else the locale)."""
    return bot_of(interaction).cached_language(interaction)


async def refused_to_others(interaction: discord.Interaction) -> bool:
    """When the message clearly belongs to someone else: say so (ephemeral, the first answer) and return
    True. Reads the message only, no database."""
    if not owner_mismatch(interaction):
        return False
    await interaction.response.send_message(t("not_yours", quick_language(interaction)), ephemeral=True)
    return True


class Field(NamedTuple):
    """One id field of a custom_id: the regex it matches, and how its text becomes the attribute's value."""

    pattern: str
    parse: Callable[[str], Any] = str


#: A non-negative number (a page, a snapshot): an ``int`` attribute.
NUMBER = Field(r"[0-9]+", int)


@dataclass(frozen=True)
class Look:
    """How a button shows: a message key (bot/messages.py) with its values, a style and an emoji."""

    label: str
    style: discord.ButtonStyle = discord.ButtonStyle.secondary
    emoji: str | None = None
    values: Mapping[str, Any] = field(default_factory=dict)


class PersistentButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"(?!)"):
    """A DynamicItem button whose custom_id is ``<prefix>:<field>:<field>...``.

    ``class CancelButton(PersistentButton, prefix="chibify:cancel", fields={"group": "[0-9a-f]{8,40}"})``
    gives ``CancelButton(group, language=...)``, the attribute ``group``, the custom_id
    ``chibify:cancel:<group>`` and its template. A field is a regex or a :class:`Field` (regex and parser).
    The button's face is ``look=`` when given, else what :meth:`look` makes of the fields (``LOOK``).
    """

    PREFIX: ClassVar[str]
    FIELDS: ClassVar[dict[str, Field]]
    LOOK: ClassVar[Look | None] = None

    def __init_subclass__(cls, *, prefix: str, fields: Mapping[str, str | Field]) -> None:
        cls.PREFIX = prefix
        cls.FIELDS = {name: f if isinstance(f, Field) else Field(f) for name, f in fields.items()}
        parts = "".join(f":(?P<{name}>{f.pattern})" for name, f in cls.FIELDS.items())
        super().__init_subclass__(template=re.escape(prefix) + parts)

    def __init__(
        self,
        *ids: Any,
        language: str = "en",
        look: Look | None = None,
        row: int | None = None,
        disabled: bool = False,
    ) -> None:
        if len(ids) != len(self.FIELDS):
            raise TypeError(f"{type(self).__name__} takes {len(self.FIELDS)} ids ({', '.join(self.FIELDS)})")
        for name, value in zip(self.FIELDS, ids, strict=True):
            setattr(self, name, value)
        if look is None:
            look = self.look()
        super().__init__(
            discord.ui.Button(
                label=t(look.label, language, **look.values),
                style=look.style,
                emoji=look.emoji,
                custom_id=":".join([self.PREFIX, *(str(value) for value in ids)]),
                row=row,
                disabled=disabled,
            )
        )

    def look(self) -> Look:
        """The button's usual face; the fields are set already. Override when it depends on them."""
        if self.LOOK is None:
            raise NotImplementedError(f"{type(self).__name__} says how it looks")
        return self.LOOK

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> Self:
        return cls(*(f.parse(match[name]) for name, f in cls.FIELDS.items()))

    async def callback(self, interaction: discord.Interaction) -> None:
        await guarded(interaction, lambda: self.run(interaction))

    async def run(self, interaction: discord.Interaction) -> None:
        """What a click does (errors become a short ephemeral reply)."""
        raise NotImplementedError
