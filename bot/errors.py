"""Errors the use cases raise for the user to read; the bot and the console both show them as they are.

Each carries a short message (what went wrong) and a hint (what to do). No discord import here: the bot's
single ``tree.on_error`` maps these to ephemeral replies; the console prints them to stderr.
"""

from __future__ import annotations


class UserError(Exception):
    """Something the user can fix. ``str(err)`` is the message; ``hint`` says what to do."""

    exit_code = 1

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} {self.hint}".strip() if self.hint else self.message


class BadInput(UserError):
    """The request itself is malformed: an unknown item, a bad colour, a size out of range."""

    exit_code = 2


class NotFoundError(UserError):
    """No such avatar for this user (never says whether it exists for someone else)."""


class Refused(UserError):
    """The prompt policy refused the request."""


class Busy(UserError):
    """The queue is full; try again later."""


class Limited(UserError):
    """A server's rule (allowed channels, daily limit, per-member queue) or the user's cooldown refused the
    whole request; nothing was queued."""


class Unavailable(UserError):
    """The feature or engine is not available in this installation."""


class GenerationFailed(UserError):
    """The job ran but did not produce an avatar."""
