"""Talking to Telegram when things go wrong: retries, blocked people, logs without content.

Network errors and flood control (429, `retry_after`) are retried with backoff; a 403 means
the person blocked the bot, which the caller records so nothing more is sent to them.
Messages (`Delivery.send`) take a slot of the send budget before each attempt (see
bot/telegram/budget.py); a 429 holds the chat there for `retry_after`, and one longer than
`max_wait` is not waited for here: the caller leaves the reply in the outbox.
Logs name the exception type and where it happened, never its message: Telegram's error texts
can quote what was being sent, and what is sent quotes what a person wrote.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter

from bot.telegram.budget import SendBudget

log = logging.getLogger(__name__)

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]


class Unreachable(Exception):
    """Telegram refused to deliver (403): the person blocked the bot or left the chat."""


def where(exc: BaseException) -> str:
    """The exception's type and traceback frames, without its message."""
    frames = "".join(
        f"  {f.filename}:{f.lineno} in {f.name}\n" for f in traceback.extract_tb(exc.__traceback__)
    )
    return f"{type(exc).__name__}\n{frames}"


def retry_seconds(exc: RetryAfter) -> float:
    """`retry_after` as seconds, whether PTB gives an int or a timedelta."""
    value: Any = exc.retry_after
    if isinstance(value, timedelta):
        return value.total_seconds()
    return float(value)


@dataclass
class Delivery:
    """Calls the Bot API with retries; `sleep` is injectable so tests need not wait."""

    attempts: int = 4
    backoff: float = 0.5
    max_wait: float = 60.0
    sleep: Sleep = asyncio.sleep
    budget: SendBudget = field(default_factory=SendBudget)

    async def call(self, method: Callable[..., Awaitable[T]], /, *args: Any, **kwargs: Any) -> T:
        """A call that sends no message (a typing action, a button's answer)."""
        return await self._attempt(None, method, args, kwargs)

    async def send(
        self, chat_id: int, method: Callable[..., Awaitable[T]], /, *args: Any, **kwargs: Any
    ) -> T:
        """A message to `chat_id` (sent or edited): within the send budget."""
        return await self._attempt(chat_id, method, args, kwargs)

    async def _attempt(
        self,
        chat_id: int | None,
        method: Callable[..., Awaitable[T]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> T:
        name = getattr(method, "__name__", "call")
        for attempt in range(1, self.attempts + 1):
            if chat_id is not None:
                await self.budget.take(chat_id)
            try:
                return await method(*args, **kwargs)
            except Forbidden as exc:
                raise Unreachable(name) from exc
            except BadRequest:
                raise  # our mistake or a stale message; retrying would not help
            except RetryAfter as exc:
                wait = retry_seconds(exc)
                if chat_id is not None:
                    self.budget.hold(chat_id, wait)
                if attempt == self.attempts or wait > self.max_wait:
                    raise
                log.warning("%s: flood control, retrying in %.1f s", name, wait)
                if chat_id is None:
                    await self.sleep(wait)  # (a message waits in the budget's `take`)
            except NetworkError as exc:
                if attempt == self.attempts:
                    raise
                wait = min(self.backoff * 2 ** (attempt - 1), self.max_wait)
                log.warning("%s: %s, retrying in %.1f s", name, type(exc).__name__, wait)
                await self.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover
