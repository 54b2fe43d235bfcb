"""Update dicts as Telegram sends them (messages, button presses, membership changes)."""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

from bot.testing.botapi import BOT_ID, Call


def chat_of(update: dict[str, Any]) -> int:
    """The chat an update belongs to (the person, for a button press)."""
    for kind in ("message", "edited_message", "my_chat_member"):
        if kind in update:
            return int(update[kind]["chat"]["id"])
    query = update.get("callback_query") or {}
    return int((query.get("message") or {}).get("chat", query.get("from", {})).get("id", 0))


# One reframe, typed: start, thought, feeling, rating, "I've noticed it", "I see it", "Okay",
# "A close friend", friend, kind, rating, the optional last question (what the benchmarks
# send, person after person; from a person's sixth reframe on a shorter path is offered first).
CYCLE = (
    "/reframe",
    "I always let people down",
    "ashamed",
    "8",
    "1",
    "1",
    "1",
    "1",
    "You are trying your best",
    "I'm trying my best, and that counts",
    "4",
    "A cup of tea",
)

# Telegram numbers updates per bot, increasing: a restarted Application (a new Updates) gets
# new ids, never ones it saw before (the engine skips an update id it has already handled).
_UPDATE_IDS = itertools.count(1)


class Updates:
    """Update dicts as Telegram sends them, with increasing update and message ids."""

    def __init__(self) -> None:
        self._update_ids = _UPDATE_IDS
        self._message_ids = itertools.count(1)

    @staticmethod
    def person(user_id: int, language: str | None = "en") -> dict[str, Any]:
        user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": f"P{user_id}"}
        if language:
            user["language_code"] = language
        return user

    @staticmethod
    def chat(chat_id: int, kind: str = "private") -> dict[str, Any]:
        chat: dict[str, Any] = {"id": chat_id, "type": kind}
        if kind != "private":
            chat["title"] = "a group"
        return chat

    def _message(
        self, user_id: int, chat: dict[str, Any] | None = None, **content: Any
    ) -> dict[str, Any]:
        return {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": chat or self.chat(user_id),
            "from": self.person(user_id),
            **content,
        }

    def message(
        self, user_id: int, chat: dict[str, Any] | None = None, **content: Any
    ) -> dict[str, Any]:
        body = self._message(user_id, chat, **content)
        return {"update_id": next(self._update_ids), "message": body}

    def text(self, user_id: int, text: str, chat: dict[str, Any] | None = None) -> dict[str, Any]:
        content: dict[str, Any] = {"text": text}
        if text.startswith("/"):
            length = len(text.split()[0])
            content["entities"] = [{"type": "bot_command", "offset": 0, "length": length}]
        return self.message(user_id, chat, **content)

    def edited(self, user_id: int, text: str) -> dict[str, Any]:
        body = self._message(user_id, text=text, edit_date=int(time.time()))
        return {"update_id": next(self._update_ids), "edited_message": body}

    def sticker(self, user_id: int) -> dict[str, Any]:
        sticker = {
            "file_id": "s1",
            "file_unique_id": "s1u",
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
        }
        return self.message(user_id, sticker=sticker)

    def photo(self, user_id: int) -> dict[str, Any]:
        size = {"file_id": "p1", "file_unique_id": "p1u", "width": 90, "height": 90}
        return self.message(user_id, photo=[size], caption="here is my thought")

    def voice(self, user_id: int) -> dict[str, Any]:
        voice = {"file_id": "v1", "file_unique_id": "v1u", "duration": 3}
        return self.message(user_id, voice=voice)

    def document(self, user_id: int) -> dict[str, Any]:
        return self.message(user_id, document={"file_id": "d1", "file_unique_id": "d1u"})

    def location(self, user_id: int) -> dict[str, Any]:
        return self.message(user_id, location={"latitude": 52.5, "longitude": 13.4})

    def press(
        self, user_id: int, data: str, sent: Call | None = None, message_id: int = 1
    ) -> dict[str, Any]:
        """A button press on a message the bot sent (as recorded), or on an old one."""
        message: dict[str, Any] = {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": self.chat(user_id),
            "from": {"id": BOT_ID, "is_bot": True, "first_name": "kindbot"},
            "text": "an earlier message",
        }
        if sent is not None:
            message["text"] = sent.text
            markup = sent.params.get("reply_markup")
            message["reply_markup"] = json.loads(markup) if isinstance(markup, str) else markup
        query = {
            "id": str(next(self._update_ids) * 7),
            "from": self.person(user_id),
            "chat_instance": "ci",
            "data": data,
            "message": message,
        }
        return {"update_id": next(self._update_ids), "callback_query": query}

    def membership(
        self, user_id: int, old: str, new: str, chat: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        bot = {"id": BOT_ID, "is_bot": True, "first_name": "kindbot"}
        change = {
            "chat": chat or self.chat(user_id),
            "from": self.person(user_id),
            "date": int(time.time()),
            "old_chat_member": {"user": bot, "status": old},
            "new_chat_member": {"user": bot, "status": new, "until_date": 0}
            if new == "kicked"
            else {"user": bot, "status": new},
        }
        return {"update_id": next(self._update_ids), "my_chat_member": change}
