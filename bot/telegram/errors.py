"""Talking to Telegram when things go wrong: retries, blocked people, logs without content.

Network errors and flood control (429, `retry_after`) are retried with backoff; a 403 means
the person blocked the bot, which the caller records so nothing more is sent to them.
Logs name the exception type and where it happened, never its message: Telegram's error texts
can quote what was being sent, and what is sent quotes what a person wrote.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter

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

    async def call(self, method: Callable[..., Awaitable[T]], /, *args: Any, **kwargs: Any) -> T:
        name = getattr(method, "__name__", "call")
        for attempt in range(1, self.attempts + 1):
            try:
                return await method(*args, **kwargs)
            except Forbidden as exc:
                raise Unreachable(name) from exc
            except BadRequest:
                raise  # our mistake or a stale message; retrying would not help
            except RetryAfter as exc:
                if attempt == self.attempts:
                    raise
                wait = min(retry_seconds(exc), self.max_wait)
                log.warning("%s: flood control, retrying in %.1f s", name, wait)
                await self.sleep(wait)
            except NetworkError as exc:
                if attempt == self.attempts:
                    raise
                wait = min(self.backoff * 2 ** (attempt - 1), self.max_wait)
                log.warning("%s: %s, retrying in %.1f s", name, type(exc).__name__, wait)
                await self.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover
