"""Turning engine outputs into Telegram calls.

Engine text is plain, so every piece is HTML-escaped and sent in HTML mode (a person's own
words quoted back can never turn into markup). Choices become inline keyboards whose callback
data, `"<step>:<value>"`, ties each button to the dialog step that offered it; a 0–10 scale is
a compact two-row keyboard. Long texts are split on paragraph, then line, then word boundaries.

Messages go out through `Bot.do_api_request` with plain JSON parameters rather than
`send_message`: PTB would parse Telegram's answer into a full `Message` (about a hundred
attributes, each set through a frozen-object check) and build a `TelegramObject` per button,
and kindbot never reads either. That parsing was about a fifth of an update's CPU time
(bench/updates.py). Errors are raised exactly as before: the request goes through the same
`_post`.
"""

from __future__ import annotations

import asyncio
import html
import logging
import re
import warnings
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from telegram import Bot, CallbackQuery, InlineKeyboardMarkup, InputFile
from telegram.constants import ChatAction, MessageLimit, ParseMode
from telegram.error import BadRequest
from telegram.warnings import PTBUserWarning

from bot.engine.events import (
    ChoiceMade,
    DialogEnded,
    Document,
    Image,
    Message,
    Output,
    Pause,
)
from bot.telegram.errors import Delivery

log = logging.getLogger(__name__)

TEXT_LIMIT = int(MessageLimit.MAX_TEXT_LENGTH)  # 4096
CAPTION_LIMIT = int(MessageLimit.CAPTION_LENGTH)  # 1024
CALLBACK_LIMIT = 64  # bytes, Telegram's limit for callback_data
NO_STEP = "-"
_CALLBACK = re.compile(r"^(\d{1,12}|-):([a-z0-9_]{1,32})$")
NO_PREVIEW = {"is_disabled": True}  # LinkPreviewOptions, as JSON
Markup = dict[str, Any]  # InlineKeyboardMarkup, ReplyKeyboardMarkup or its removal, as JSON
REMOVE_KEYBOARD: Markup = {"remove_keyboard": True}
# do_api_request asks, for endpoints PTB has a method for, to use that method instead; for the
# ones below we mean not to (see the module docstring).
LEAN = ("sendMessage", "editMessageText", "editMessageReplyMarkup")
for _endpoint in LEAN:
    warnings.filterwarnings(
        "ignore", message=f"Please use 'Bot.{_endpoint}'", category=PTBUserWarning
    )


# -- callback data -----------------------------------------------------------------------
def encode_choice(step: int | None, value: str | int) -> str:
    data = f"{NO_STEP if step is None else step}:{value}"
    if len(data.encode()) > CALLBACK_LIMIT:
        raise ValueError("callback data over Telegram's 64 bytes")
    return data


def decode_choice(data: str | None) -> ChoiceMade | None:
    """The choice a button stands for; None for data we never made (forged or malformed)."""
    match = _CALLBACK.match(data or "")
    if match is None:
        return None
    step, value = match.groups()
    return ChoiceMade(value, None if step == NO_STEP else int(step))


# -- keyboards ---------------------------------------------------------------------------
def button(text: str, step: int | None, value: str | int) -> dict[str, str]:
    return {"text": text, "callback_data": encode_choice(step, value)}


# Buttons labelled with one short word share a row (feeling words, times, "Yes"/"No"), at
# most ROW_BUTTONS of them and ROW_CHARS characters together; a phrase has a row of its own
# (so "More contacts" never sits beside "My safety plan" in a crisis pause).
SHORT_LABEL = 15
ROW_BUTTONS = 3
ROW_CHARS = 30


def button_rows(labels: Sequence[str]) -> list[list[int]]:
    """The places of `labels` laid out in rows: a run of short ones shares rows, so a list
    of single words is not a column as tall as the screen; anything longer stands alone."""
    rows: list[list[int]] = []
    for index, label in enumerate(labels):
        last = rows[-1] if rows else None
        if (
            _one_word(label)
            and last is not None
            and all(_one_word(labels[i]) for i in last)
            and len(last) < ROW_BUTTONS
            and sum(_units(labels[i]) for i in last) + _units(label) <= ROW_CHARS
        ):
            last.append(index)
        else:
            rows.append([index])
    return rows


def _one_word(label: str) -> bool:
    return _units(label) <= SHORT_LABEL and not any(c.isspace() for c in label)


def keyboard(message: Message) -> Markup | None:
    """Buttons for a message's options (one-word ones share rows, see `button_rows`) or its
    scale (two compact rows, its options such as "Skip" below them); for a text question
    that asks for a location, Telegram's own "share location" button (a one-time reply
    keyboard: typing an answer instead still works)."""
    options = message.options
    choices = [
        [button(options[i].label, message.step, options[i].value) for i in row]
        for row in button_rows([o.label for o in options])
    ]
    if message.scale is not None:
        numbers = list(range(message.scale.low, message.scale.high + 1))
        half = (len(numbers) + 1) // 2 if len(numbers) > 6 else len(numbers)
        buttons = [button(str(n), message.step, n) for n in numbers]
        rows = [buttons[:half], buttons[half:]] if half < len(buttons) else [buttons]
        # a scale's own buttons ("Skip") go under its numbers
        return {"inline_keyboard": rows + choices}
    if choices:
        return {"inline_keyboard": choices}
    if message.location:
        return {
            "keyboard": [[{"text": message.location, "request_location": True}]],
            "one_time_keyboard": True,
            "resize_keyboard": True,
        }
    return None


# -- text --------------------------------------------------------------------------------
def _units(text: str) -> int:
    """Length as Telegram counts it (UTF-16 code units)."""
    return len(text.encode("utf-16-le")) // 2


def _prefix_within(text: str, limit: int) -> int:
    """The number of characters of `text` that fit in `limit` UTF-16 units."""
    used = 0
    for index, char in enumerate(text):
        used += 2 if ord(char) > 0xFFFF else 1
        if used > limit:
            return index
    return len(text)


def split_text(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    """Pieces of at most `limit` units, cut at a paragraph, line or word boundary if any."""
    pieces: list[str] = []
    rest = text
    while _units(rest) > limit:
        head = rest[: _prefix_within(rest, limit)]
        cut = -1
        for separator in ("\n\n", "\n", " "):
            cut = head.rfind(separator)
            if cut > 0:
                break
        if cut <= 0:
            cut = len(head)
        pieces.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest or not pieces:
        pieces.append(rest)
    return [p for p in pieces if p] or [""]


def escape(text: str) -> str:
    return html.escape(text, quote=False)


# -- sending -----------------------------------------------------------------------------
@dataclass
class Shown:
    """One reply as it goes out: the message its paced outputs change in place (the last one
    sent), and whether to hurry (the person wrote again, or the reply is sent after a
    restart): then pauses end at once and in-place changes that a later one replaces are
    left out (bot/telegram/replies.py)."""

    message_id: int | None = None
    hurry: bool = False
    woken: asyncio.Event = field(default_factory=asyncio.Event)

    def hurry_up(self) -> None:
        self.hurry = True
        self.woken.set()


class Renderer:
    """Shows outputs in one chat; `sleep` is injectable so tests can hold a pause open."""

    def __init__(
        self,
        bot: Bot,
        delivery: Delivery,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.bot = bot
        self.delivery = delivery
        self.sleep = sleep
        # chat id -> the last message sent there with a keyboard, so that the keyboard can be
        # taken off when its step is stopped (/cancel, "stop"). Kept in this process only:
        # after a restart, or on another worker, the old keyboard just stays, and its buttons
        # answer "that step has passed" (or start their dialog), so losing this is harmless.
        self.keyboards: dict[int, int] = {}
        # chats whose location button may still show: the next message without buttons
        # there takes it away. Kept in this process only: after a restart the button just
        # stays until used (sharing a location later sets the timezone too), so losing
        # this is harmless.
        self.location_asked: set[int] = set()

    async def show(
        self, chat_id: int, outputs: Sequence[Output], shown: Shown | None = None
    ) -> None:
        """Show `outputs`; `shown` carries one reply's place across calls (its paced
        messages change the message sent before them instead of arriving as new ones)."""
        shown = shown or Shown()
        for output in outputs:
            if isinstance(output, Message):
                await self.message(chat_id, output, shown)
            elif isinstance(output, Pause):
                if not shown.hurry:
                    await self.typing(chat_id)
                    await self.pause(output.seconds, shown)
            elif isinstance(output, Image | Document):
                shown.message_id = None
                await self.file(chat_id, output)
            elif isinstance(output, DialogEnded) and not output.completed:
                await self.drop_keyboard(chat_id)

    async def pause(self, seconds: float, shown: Shown) -> None:
        """Wait `seconds`, or less if the reply is told to hurry meanwhile. Only this chat's
        reply waits: other people's updates run on their own tasks."""
        sleeper = asyncio.ensure_future(self.sleep(seconds))
        woken = asyncio.ensure_future(shown.woken.wait())
        try:
            await asyncio.wait((sleeper, woken), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sleeper, woken):
                task.cancel()

    async def message(self, chat_id: int, message: Message, shown: Shown | None = None) -> None:
        shown = shown or Shown()
        markup = keyboard(message)
        if message.edits and shown.message_id is not None and _units(message.text) <= TEXT_LIMIT:
            where = {"chat_id": chat_id, "message_id": shown.message_id}
            try:
                await self.delivery.send(chat_id, edit_text, self.bot, where, message.text, markup)
                return
            except BadRequest as exc:  # deleted, or too old to change: a question is sent anew
                log.info("could not change a paced message: %s", type(exc).__name__)
                if markup is None:
                    return
        elif message.edits and shown.hurry and markup is None:
            return  # nothing to change in place any more (a restart): only questions go out
        if markup is not None and "keyboard" in markup:
            self.location_asked.add(chat_id)
        elif markup is None and chat_id in self.location_asked:
            self.location_asked.discard(chat_id)
            markup = REMOVE_KEYBOARD
        pieces = split_text(message.text)
        for index, piece in enumerate(pieces):
            last = index == len(pieces) - 1
            shown.message_id = await self.text(chat_id, piece, markup if last else None)

    async def text(self, chat_id: int, text: str, markup: Markup | None = None) -> int | None:
        """Send `text`; the id Telegram gave the message, if it said. A message with a
        keyboard is remembered, so `drop_keyboard` can take it off when its step is stopped."""
        sent = await self.delivery.send(chat_id, send_text, self.bot, chat_id, text, markup)
        if markup is not None and "inline_keyboard" in markup and sent is not None:
            self.keyboards[chat_id] = sent  # (a reply keyboard, the location's, is not edited)
        return sent

    async def drop_keyboard(self, chat_id: int) -> None:
        """Take the keyboard off the last message that had one here: its step was stopped.
        Telegram refusing (the message is too old, or already has none) changes nothing."""
        message_id = self.keyboards.pop(chat_id, None)
        if message_id is None:
            return
        where = {"chat_id": chat_id, "message_id": message_id}
        try:
            await self.delivery.send(chat_id, lean, self.bot, "editMessageReplyMarkup", where)
        except BadRequest as exc:
            log.info("an old keyboard could not be taken off (%s)", type(exc).__name__)

    async def typing(self, chat_id: int) -> None:
        await self.delivery.call(
            self.bot.send_chat_action, chat_id=chat_id, action=ChatAction.TYPING
        )

    async def file(self, chat_id: int, output: Image | Document) -> None:
        caption = output.caption if _units(output.caption) <= CAPTION_LIMIT else ""
        if isinstance(output, Image):
            await self.delivery.send(
                chat_id,
                self.bot.send_photo,
                chat_id=chat_id,
                photo=InputFile(output.data, filename=output.filename),
                caption=escape(caption) or None,
                parse_mode=ParseMode.HTML,
            )
        else:
            await self.delivery.send(
                chat_id,
                self.bot.send_document,
                chat_id=chat_id,
                document=InputFile(output.data, filename=output.filename),
                filename=output.filename,
                caption=escape(caption) or None,
                parse_mode=ParseMode.HTML,
            )
        if output.caption and not caption:
            await self.text(chat_id, output.caption)

    async def mark_chosen(self, query: CallbackQuery) -> None:
        """Take the keyboard off a pressed message and show what was picked under its text."""
        message = query.message
        if message is None or not hasattr(message, "text"):
            return  # too old for Telegram to show us (InaccessibleMessage)
        label = _label_of(query)
        text = message.text
        where = {"chat_id": message.chat.id, "message_id": message.message_id}
        if self.keyboards.get(message.chat.id) == message.message_id:
            del self.keyboards[message.chat.id]  # its keyboard comes off here
        if text and label and _units(text) + _units(label) + 4 <= TEXT_LIMIT:
            marked = f"{escape(text)}\n\n→ <b>{escape(label)}</b>"
            await self.delivery.send(
                message.chat.id,
                lean,
                self.bot,
                "editMessageText",
                {**where, "text": marked, "parse_mode": "HTML", "link_preview_options": NO_PREVIEW},
            )
        else:
            await self.delivery.send(
                message.chat.id, lean, self.bot, "editMessageReplyMarkup", where
            )


async def lean(bot: Bot, endpoint: str, params: dict[str, Any]) -> Any:
    """A Bot API call whose answer is not parsed into objects (one of `LEAN`): its raw
    result (JSON)."""
    return await bot.do_api_request(endpoint, api_kwargs=params)


async def send_text(bot: Bot, chat_id: int, text: str, markup: Markup | None = None) -> int | None:
    """sendMessage in HTML mode with the text escaped, without parsing the sent Message; the
    sent message's id."""
    params: dict[str, Any] = {
        "chat_id": chat_id,
        "text": escape(text),
        "parse_mode": "HTML",
        "link_preview_options": NO_PREVIEW,
    }
    if markup is not None:
        params["reply_markup"] = markup
    return _message_id(await lean(bot, "sendMessage", params))


async def edit_text(
    bot: Bot, where: dict[str, int], text: str, markup: Markup | None = None
) -> None:
    """editMessageText in HTML mode with the text escaped (a paced message shown in place)."""
    params: dict[str, Any] = {
        **where,
        "text": escape(text),
        "parse_mode": "HTML",
        "link_preview_options": NO_PREVIEW,
    }
    if markup is not None:
        params["reply_markup"] = markup
    await lean(bot, "editMessageText", params)


def _message_id(result: Any) -> int | None:
    found = result.get("message_id") if isinstance(result, dict) else None
    return found if isinstance(found, int) else None


def _label_of(query: CallbackQuery) -> str | None:
    message = query.message
    markup = getattr(message, "reply_markup", None)
    if not isinstance(markup, InlineKeyboardMarkup):
        return None
    for row in markup.inline_keyboard:
        for button in row:
            if button.callback_data == query.data:
                return button.text
    return None
