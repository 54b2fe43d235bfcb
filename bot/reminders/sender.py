"""How the dispatcher hands a reminder to a channel, and the three ways that can fail."""

from __future__ import annotations

from typing import Protocol

from bot.engine.events import Output
from storage.models import User


class Blocked(Exception):
    """The person cannot be reached (Telegram 403: blocked the bot, account deactivated)."""


class RetryLater(Exception):
    """The channel asks us to slow down (Telegram 429); try again after `seconds`."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"retry after {seconds:g} s")
        self.seconds = seconds


class SendFailed(Exception):
    """Anything else (network trouble, a server error); retried a bounded number of times."""


class Sender(Protocol):
    """Delivers one reminder's outputs to one person on one channel."""

    @property
    def channel(self) -> str:
        """The `users.channel` this sender can reach (e.g. "telegram")."""
        ...

    async def send(self, user: User, outputs: list[Output]) -> None:
        """Send, or raise Blocked, RetryLater or SendFailed."""
        ...
