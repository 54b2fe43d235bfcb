"""Sending reminders through python-telegram-bot, mapping Telegram's errors to the
dispatcher's: 403 → Blocked, 429 → RetryLater, network trouble → SendFailed (retried).

Rendered like the Telegram adapter (bot/telegram/render.py on the telegram branch): text
HTML-escaped and sent in HTML mode, one button per row with callback data "<step>:<value>"
("-" for no step), so a button pressed on a reminder reaches the adapter's decoder as
`ChoiceMade(value, step)`. Once both are merged this can use that module's `keyboard`.
"""

from __future__ import annotations

import html
import logging
from datetime import timedelta

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, LinkPreviewOptions
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError

from bot.engine.events import Message, Output
from bot.reminders.sender import Blocked, RetryLater, SendFailed
from storage.models import User

log = logging.getLogger(__name__)

# Telegram answers 400 with these when the chat is gone for good: same as being blocked.
_GONE = ("chat not found", "user is deactivated", "bot was kicked", "peer_id_invalid")


NO_PREVIEW = LinkPreviewOptions(is_disabled=True)


def callback_data(step: int | None, value: str | int) -> str:
    return f"{'-' if step is None else step}:{value}"


def keyboard(message: Message) -> InlineKeyboardMarkup | None:
    """Buttons for a message's options (one per row) or its scale (two compact rows)."""
    if message.options:
        return InlineKeyboardMarkup(
            [
                [InlineKeyboardButton(o.label, callback_data=callback_data(message.step, o.value))]
                for o in message.options
            ]
        )
    if message.scale is not None:
        numbers = list(range(message.scale.low, message.scale.high + 1))
        half = (len(numbers) + 1) // 2 if len(numbers) > 6 else len(numbers)
        buttons = [
            InlineKeyboardButton(str(n), callback_data=callback_data(message.step, n))
            for n in numbers
        ]
        rows = [buttons[:half], buttons[half:]] if half < len(buttons) else [buttons]
        return InlineKeyboardMarkup(rows)
    return None


def retry_seconds(exc: RetryAfter) -> float:
    """`retry_after` in seconds, without PTB's int/timedelta deprecation warning."""
    raw = getattr(exc, "_retry_after", None)
    if isinstance(raw, timedelta):
        return raw.total_seconds()
    value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


class TelegramSender:
    """The dispatcher's `Sender` for people who talk to kindbot on Telegram."""

    channel = "telegram"

    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    async def send(self, user: User, outputs: list[Output]) -> None:
        chat_id = int(user.external_id)
        for output in outputs:
            if not isinstance(output, Message):
                continue  # reminders only ever say something (no pauses, charts or files)
            try:
                await self.bot.send_message(
                    chat_id,
                    html.escape(output.text, quote=False),
                    parse_mode=ParseMode.HTML,
                    reply_markup=keyboard(output),
                    link_preview_options=NO_PREVIEW,
                )
            except Forbidden as exc:
                raise Blocked() from exc
            except RetryAfter as exc:
                raise RetryLater(retry_seconds(exc)) from exc
            except BadRequest as exc:
                if any(text in str(exc).lower() for text in _GONE):
                    raise Blocked() from exc
                raise SendFailed("bad request") from exc
            except NetworkError as exc:  # includes TimedOut
                raise SendFailed("network") from exc
            except TelegramError as exc:
                raise SendFailed(type(exc).__name__) from exc
