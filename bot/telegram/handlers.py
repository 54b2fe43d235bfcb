"""Small handlers, one per kind of update, and the routing table that wires them.

Every handler turns an update into one engine event for one person and renders what comes
back. Conversation state lives in the database (engine), never in PTB: no persistence, no
ConversationHandler, so a restart or another worker carries on where the person was.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from contextvars import ContextVar
from typing import Any

from telegram import Chat, ChatMember, Update, User
from telegram.error import BadRequest, RetryAfter, TelegramError
from telegram.ext import (
    BaseHandler,
    CallbackQueryHandler,
    ChatMemberHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot import metrics
from bot.app import App
from bot.engine.events import (
    Command,
    Edited,
    Event,
    Location,
    Message,
    Output,
    Text,
    Unsupported,
    UserRef,
)
from bot.engine.outbox import Reply
from bot.reminders import store as reminder_store
from bot.telegram.errors import Unreachable, where
from bot.telegram.render import Renderer, decode_choice
from bot.telegram.replies import CHANNEL, ReplySender
from storage import repo
from storage.models import utcnow

log = logging.getLogger(__name__)

Context = ContextTypes.DEFAULT_TYPE

PRIVATE = filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE  # edits are never re-answered
GROUPS = filters.ChatType.GROUPS & filters.UpdateType.MESSAGE
# what we ask Telegram for (edits only to screen them for crisis language)
UPDATES = ["message", "edited_message", "callback_query", "my_chat_member"]

# Set around each engine call: marked when that step failed (see `_note_failed_step`).
_STEP_FAILED: ContextVar[list[bool] | None] = ContextVar("kindbot_step_failed", default=None)

# Attachment kinds, in the order they are checked (the first one present names the input).
KINDS = (
    "sticker",
    "photo",
    "voice",
    "video_note",
    "video",
    "animation",
    "audio",
    "document",
    "location",
    "venue",
    "contact",
    "poll",
    "dice",
)


def user_ref(user: User) -> UserRef:
    return UserRef(
        channel=CHANNEL,
        external_id=str(user.id),
        locale=user.language_code,
        language_tag=user.language_code,
    )


class Handlers:
    """The Telegram side of kindbot: updates in, engine events, rendered outputs out."""

    def __init__(self, app: App, renderer: Renderer, *, typing_after: float = 0.4) -> None:
        self.app = app
        self.engine = app.engine
        self.renderer = renderer
        self.replies = ReplySender(app.engine, renderer, self.unreachable)
        self.typing_after = typing_after
        self._background: set[asyncio.Task[Any]] = set()
        if _note_failed_step not in self.engine.fallbacks:
            self.engine.fallbacks.insert(0, _note_failed_step)

    # -- handlers ------------------------------------------------------------------------
    async def on_start(self, update: Update, context: Context) -> None:
        """/start: a person coming back after blocking the bot is reachable again."""
        chat, user = update.effective_chat, update.effective_user
        if chat is None or user is None:
            return
        await self.set_blocked(user, blocked=False)
        args = " ".join(context.args or [])
        await self.converse(chat, user, Command("start", args), update.update_id)

    async def on_text(self, update: Update, context: Context) -> None:
        """Typed text, /commands included: the engine tells them apart."""
        chat, user, message = update.effective_chat, update.effective_user, update.message
        if chat is None or user is None or message is None or message.text is None:
            return
        event = Text(message.text, at=message.date)
        await self.converse(chat, user, event, update.update_id)

    async def on_edit(self, update: Update, context: Context) -> None:
        """An edited message is not a new answer, but crisis language in it is still heard."""
        chat, user, message = update.effective_chat, update.effective_user, update.edited_message
        if chat is None or user is None or message is None:
            return
        text = message.text or message.caption
        if text:
            await self.converse(chat, user, Edited(text), update.update_id)

    async def on_location(self, update: Update, context: Context) -> None:
        """A shared location: used at once to find the timezone, never stored."""
        chat, user, message = update.effective_chat, update.effective_user, update.message
        if chat is None or user is None or message is None or message.location is None:
            return
        place = message.location
        await self.converse(chat, user, Location(place.latitude, place.longitude), update.update_id)

    async def on_unsupported(self, update: Update, context: Context) -> None:
        """A sticker, photo, voice note, file, location…: the engine answers gently."""
        chat, user, message = update.effective_chat, update.effective_user, update.message
        if chat is None or user is None or message is None:
            return
        kind = next((k for k in KINDS if getattr(message, k, None)), "attachment")
        event = Unsupported(kind, caption=message.caption or "")
        await self.converse(chat, user, event, update.update_id)

    async def on_press(self, update: Update, context: Context) -> None:
        """A button: its choice, if the step that offered it is still the current one."""
        query, user, chat = update.callback_query, update.effective_user, update.effective_chat
        if query is None or user is None:
            return
        choice = decode_choice(query.data)
        if choice is None or chat is None or chat.type != Chat.PRIVATE:
            log.warning("ignored callback data we did not make (%d bytes)", len(query.data or ""))
            await self.answer(query, self.text("step_passed", user))
            return
        ref = user_ref(user)
        reply = await self.handle(chat.id, ref, choice, update.update_id)
        outputs = reply.pending
        if not outputs:  # answered before a restart (a redelivery): only stop the spinner
            await self.answer(query)
            return
        if self.is_step_passed(outputs):
            await self.answer(query, outputs[0].text if isinstance(outputs[0], Message) else "")
            await self.engine.outbox.done(reply)  # said in the spinner's place, not as a message
            return
        if reply.start == 0:
            try:
                await asyncio.gather(self.answer(query), self.renderer.mark_chosen(query))
            except BadRequest as exc:
                log.info("could not mark the pressed message: %s", type(exc).__name__)
        else:
            await self.answer(query)
        await self.show(chat, ref, reply)

    async def on_membership(self, update: Update, context: Context) -> None:
        """Blocked or unblocked in a private chat; added to a group (pointed to private)."""
        change = update.my_chat_member
        if change is None:
            return
        status = change.new_chat_member.status
        if change.chat.type == Chat.PRIVATE:
            if status == ChatMember.BANNED:
                await self.set_blocked(change.from_user, blocked=True)
            elif status == ChatMember.MEMBER:
                await self.set_blocked(change.from_user, blocked=False)
            return
        joined = status in (ChatMember.MEMBER, ChatMember.ADMINISTRATOR)
        was_out = change.old_chat_member.status in (ChatMember.LEFT, ChatMember.BANNED)
        if joined and was_out and change.chat.type != Chat.CHANNEL:
            await self.private_only(change.chat, change.from_user)

    async def on_group(self, update: Update, context: Context) -> None:
        """A command in a group: one line pointing to a private chat; nothing stored."""
        chat, user = update.effective_chat, update.effective_user
        if chat is not None:
            await self.private_only(chat, user)

    async def on_error(self, update: object, context: Context) -> None:
        """Log the failure (never content), tell the person briefly, keep running."""
        error = context.error
        if error is None:
            return
        log.error("error while handling an update: %s", where(error))
        metrics.update_error()
        if not isinstance(update, Update) or update.effective_chat is None:
            return
        if update.effective_chat.type != Chat.PRIVATE:
            return
        try:
            await self.renderer.text(
                update.effective_chat.id,
                self.text("something_went_wrong", update.effective_user),
            )
        except (TelegramError, Unreachable) as exc:
            log.warning("could not tell the person about the error: %s", type(exc).__name__)

    # -- helpers -------------------------------------------------------------------------
    async def converse(self, chat: Chat, user: User, event: Event, update_id: int) -> None:
        ref = user_ref(user)
        reply = await self.handle(chat.id, ref, event, update_id)
        await self.show(chat, ref, reply)

    async def handle(self, chat_id: int, ref: UserRef, event: Event, update_id: int) -> Reply:
        """The engine's answer, kept in the outbox; a typing action if it takes a moment.

        The update id goes with the event: delivery is at-least-once, and an update handled
        just before a crash comes again after the restart; the engine then hands back only
        what of its reply was not sent yet.
        """
        loop = asyncio.get_running_loop()
        timer = loop.call_later(self.typing_after, self._typing_soon, chat_id)
        failed = [False]
        token = _STEP_FAILED.set(failed)
        started = time.perf_counter()
        outcome = "failed"
        try:
            reply = await self.engine.reply(ref, event, seq=update_id)
            outcome = "failed" if failed[0] else step_outcome(reply)
            return reply
        finally:
            _STEP_FAILED.reset(token)
            timer.cancel()
            metrics.step(outcome, time.perf_counter() - started)

    async def show(self, chat: Chat, ref: UserRef, reply: Reply) -> None:
        try:
            await self.replies.send(chat.id, ref, reply)
        except Unreachable:
            await self.unreachable(ref)
        except RetryAfter:  # the budget holds the chat; the outbox sweep sends the rest
            log.warning("flood control: a reply waits in the outbox")

    async def unreachable(self, ref: UserRef) -> None:
        log.info("a person blocked the bot; marking them unreachable")
        await self.set_blocked_id(ref.external_id, blocked=True)

    async def answer(self, query: Any, text: str | None = None) -> None:
        try:
            await self.renderer.delivery.call(query.answer, text=(text or None) and text[:200])
        except BadRequest as exc:  # too old to answer: nothing to do
            log.info("could not answer a button press: %s", type(exc).__name__)

    async def private_only(self, chat: Chat, user: User | None) -> None:
        try:
            await self.renderer.text(chat.id, self.text("private_only", user))
        except (TelegramError, Unreachable) as exc:
            log.info("could not answer in a group: %s", type(exc).__name__)

    async def set_blocked(self, user: User, *, blocked: bool) -> None:
        await self.set_blocked_id(str(user.id), blocked=blocked)

    async def set_blocked_id(self, external_id: str, *, blocked: bool) -> None:
        async with self.app.db.session() as session:
            known = await repo.set_blocked(
                session,
                channel=CHANNEL,
                external_id=external_id,
                at=utcnow() if blocked else None,
            )
            if known:
                await session.commit()
        if not known:
            return
        # Reminders stop for someone who blocked the bot and resume when they come back.
        if blocked:
            await reminder_store.disable_for_user(
                self.app.db, channel=CHANNEL, external_id=external_id
            )
        else:
            await reminder_store.reenable_for_user(
                self.app.db, channel=CHANNEL, external_id=external_id
            )

    def text(self, key: str, user: User | None) -> str:
        locale = self.app.catalog.locale(user.language_code if user else None)
        return locale.message(key)

    def is_step_passed(self, outputs: Sequence[Output]) -> bool:
        """The engine's answer to a stale or forged button: one plain "step passed" line."""
        if len(outputs) != 1 or not isinstance(outputs[0], Message) or outputs[0].options:
            return False
        return any(
            outputs[0].text in locale.messages.get("step_passed", [])
            for locale in self.app.catalog.locales.values()
        )

    def _typing_soon(self, chat_id: int) -> None:
        task = asyncio.ensure_future(self._typing(chat_id))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _typing(self, chat_id: int) -> None:
        try:
            await self.renderer.typing(chat_id)
        except (TelegramError, Unreachable) as exc:
            log.debug("typing action failed: %s", type(exc).__name__)


def step_outcome(reply: Reply) -> str:
    """How a step that did not fail ended, as its reply tells: "resumed" when a redelivered
    update finds part of its reply sent already; "empty" with nothing to send (an update
    answered before, or one that asks for no reply, such as a harmless edit); else "ok" (a
    redelivery whose reply is wholly unsent looks like a new reply from here)."""
    if reply.start > 0:
        return "resumed"
    return "ok" if reply.outputs else "empty"


def _note_failed_step(ref: UserRef, event: Event, prepared: dict[str, Any]) -> None:
    """The engine's first fallback: it asks its fallbacks only when a step failed, so this
    marks the step being measured (`Handlers.handle`) as failed. It answers nothing, and the
    real fallbacks (crisis help without the database) still run."""
    failed = _STEP_FAILED.get()
    if failed is not None:
        failed[0] = True


def routes(h: Handlers) -> list[BaseHandler[Update, Context, None]]:
    """The routing table: the first matching line handles an update."""
    return [
        CommandHandler("start", h.on_start, filters=PRIVATE),
        MessageHandler(PRIVATE & filters.TEXT, h.on_text),
        MessageHandler(filters.ChatType.PRIVATE & filters.UpdateType.EDITED_MESSAGE, h.on_edit),
        MessageHandler(PRIVATE & filters.LOCATION, h.on_location),
        MessageHandler(PRIVATE & filters.ATTACHMENT, h.on_unsupported),
        CallbackQueryHandler(h.on_press),
        ChatMemberHandler(h.on_membership, ChatMemberHandler.MY_CHAT_MEMBER),
        MessageHandler(GROUPS & filters.COMMAND, h.on_group),
    ]
