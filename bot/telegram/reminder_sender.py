"""Sending reminders through python-telegram-bot, mapping Telegram's errors to the
dispatcher's: 403 → Blocked, 429 → RetryLater, network trouble → SendFailed (retried).

Rendered by the Telegram adapter's own `send_text` and `keyboard` (bot/telegram/render.py),
so a button pressed on a reminder reaches the adapter's decoder as `ChoiceMade(value, step)`.
Each message takes a background slot of the send budget the replies use (replies go first);
a 429 holds the budget as well as the dispatcher's shared bucket.
"""

from __future__ import annotations

import logging

from telegram import Bot
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError

from bot.engine.events import Message, Output
from bot.reminders.sender import Blocked, RetryLater, SendFailed
from bot.telegram.budget import SendBudget
from bot.telegram.errors import retry_seconds
from bot.telegram.render import keyboard, send_text
from storage.models import User

log = logging.getLogger(__name__)

# Telegram answers 400 with these when the chat is gone for good: same as being blocked.
_GONE = ("chat not found", "user is deactivated", "bot was kicked", "peer_id_invalid")


class TelegramSender:
    """The dispatcher's `Sender` for people who talk to kindbot on Telegram."""

    channel = "telegram"

    def __init__(self, bot: Bot, budget: SendBudget) -> None:
        self.bot = bot
        self.budget = budget

    async def send(self, user: User, outputs: list[Output]) -> None:
        chat_id = int(user.external_id)
        for output in outputs:
            if not isinstance(output, Message):
                continue  # reminders only ever say something (no pauses, charts or files)
            await self.budget.take(chat_id, urgent=False)
            try:
                await send_text(self.bot, chat_id, output.text, keyboard(output))
            except Forbidden as exc:
                raise Blocked() from exc
            except RetryAfter as exc:
                seconds = retry_seconds(exc)
                self.budget.hold(chat_id, seconds)
                raise RetryLater(seconds) from exc
            except BadRequest as exc:
                if any(text in str(exc).lower() for text in _GONE):
                    raise Blocked() from exc
                raise SendFailed("bad request") from exc
            except NetworkError as exc:  # includes TimedOut
                raise SendFailed("network") from exc
            except TelegramError as exc:
                raise SendFailed(type(exc).__name__) from exc
