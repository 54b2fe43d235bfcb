"""A fake Telegram Bot API: Telegram's answers, and a record of every call.

`BotAPI` answers Bot API methods and records every call (method and parameters). It knows
nothing of PTB: `bot.testing.harness` puts it at PTB's network seam (in process), and
`bot.testing.loopback` serves it over HTTP on 127.0.0.1 (for `kindbot run` in a subprocess).
It ships in the package, not in tests/, because the benchmarks drive the bot through it too.

Failures can be injected per method: `api.fail("sendMessage", "retry_after")` makes the next
sendMessage answer 429; "forbidden" (403), "bad_request" (400) and "network" (a connection
error raised by the request layer) work the same way.

For crash tests, `api.intercept` sees every request as it arrives, before anything is recorded
or applied (a getUpdates offset included), and may drop it: the request then never reached
Telegram (the server closes the connection unanswered).
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

TOKEN = "123456789:" + "A" * 35
BOT_ID = 123456789
BOT_USERNAME = "kindbot_test_bot"


_JSON_STARTS = frozenset('{["-0123456789tfn')


class Dropped(Exception):
    """A request `BotAPI.intercept` refused: Telegram never saw it, and it gets no answer."""


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    # the id of the message it sent (sendMessage and the like), once answered
    message_id: int | None = None

    @property
    def text(self) -> str:
        return str(self.params.get("text", ""))

    @property
    def chat_id(self) -> int:
        return int(self.params.get("chat_id", 0))

    @property
    def buttons(self) -> list[list[dict[str, Any]]]:
        markup = self.params.get("reply_markup")
        if isinstance(markup, str):
            markup = json.loads(markup)
        if not markup:
            return []
        rows: list[list[dict[str, Any]]] = markup.get("inline_keyboard", [])
        return rows

    @property
    def labels(self) -> list[str]:
        return [b["text"] for row in self.buttons for b in row]

    def data_for(self, label: str) -> str:
        for row in self.buttons:
            for button in row:
                if button["text"] == label:
                    return str(button["callback_data"])
        raise KeyError(f"no button {label!r} in {self.labels}")


def _decode(value: Any) -> Any:
    """Form values arrive JSON-encoded (except plain strings)."""
    if not isinstance(value, str) or value[:1] not in _JSON_STARTS:
        return value  # (a failed json.loads per text would cost more than the rest of a call)
    try:
        return json.loads(value)
    except ValueError:
        return value


# The failures `BotAPI.fail` can queue that are a plain error answer: (status, description).
ERRORS = {
    "forbidden": (403, "Forbidden: bot was blocked by the user"),
    "unauthorized": (401, "Unauthorized"),
    "bad_request": (400, "Bad Request: nope"),
    "chat_not_found": (400, "Bad Request: chat not found"),
    "server": (502, "Bad Gateway"),
}


@dataclass
class BotAPI:
    """The Bot API's answers and a record of every call; thread-safe."""

    calls: list[Call] = field(default_factory=list)
    failures: dict[str, deque[str]] = field(default_factory=lambda: defaultdict(deque))
    updates: list[dict[str, Any]] = field(default_factory=list)
    confirmed: int = 0  # getUpdates confirms every update below the offset it asks for
    # Called with (method, decoded params) as each request arrives; False drops it (Dropped).
    intercept: Callable[[str, dict[str, Any]], bool] | None = None
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1000))
    _lock: threading.Condition = field(default_factory=threading.Condition)

    def fail(self, method: str, kind: str, times: int = 1, *, chat_id: int | None = None) -> None:
        """Queue `times` failures of `kind` for `method` (only for `chat_id`, if given):
        "retry_after" (429; "retry_after:3" for 3 s), "forbidden" (403), "unauthorized"
        (401), "bad_request" and "chat_not_found" (400), "server" (502), "network" (the
        connection drops unanswered)."""
        key = method if chat_id is None else f"{method}@{chat_id}"
        with self._lock:
            self.failures[key].extend([kind] * times)

    def push_update(self, update: dict[str, Any]) -> None:
        """Queue an update for getUpdates (the server's long polling)."""
        with self._lock:
            self.updates.append(update)
            self._lock.notify_all()

    def sent(self, method: str = "sendMessage", chat_id: int | None = None) -> list[Call]:
        with self._lock:
            return [
                c
                for c in self.calls
                if c.method == method and (chat_id is None or c.chat_id == chat_id)
            ]

    def texts(self, chat_id: int | None = None) -> list[str]:
        return [c.text for c in self.sent("sendMessage", chat_id)]

    def wait_for(self, check: Callable[[], bool], timeout: float = 30.0) -> None:
        """Block (a test thread) until `check()` holds; fail after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; calls so far: {[c.method for c in self.calls]}")
            time.sleep(0.02)

    def clear(self) -> None:
        with self._lock:
            self.calls.clear()

    def failure_for(self, method: str) -> str | None:
        with self._lock:
            queue = self.failures.get(method)
            return queue.popleft() if queue else None

    def answer(self, method: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """The HTTP status and JSON body Telegram would give."""
        params = {k: _decode(v) for k, v in params.items()}
        if self.intercept is not None and not self.intercept(method, params):
            raise Dropped(method)
        chat = params.get("chat_id")
        failure = (self.failure_for(f"{method}@{chat}") if chat is not None else None) or (
            self.failure_for(method)
        )
        if method == "getUpdates" and failure is None:
            return 200, {"ok": True, "result": self._get_updates(params)}
        call = Call(method, params)
        if method != "getUpdates":
            with self._lock:
                self.calls.append(call)
        if failure == "network":
            raise Dropped(method)
        if failure is not None and failure.startswith("retry_after"):
            seconds = int(failure.partition(":")[2] or 1)
            return 429, {
                "ok": False,
                "error_code": 429,
                "description": f"Too Many Requests: retry after {seconds}",
                "parameters": {"retry_after": seconds},
            }
        if failure in ERRORS:
            code, description = ERRORS[failure]
            return code, {"ok": False, "error_code": code, "description": description}
        result = self._result(method, params)
        if isinstance(result, dict):
            call.message_id = result.get("message_id")
        return 200, {"ok": True, "result": result}

    def _result(self, method: str, params: dict[str, Any]) -> Any:
        if method == "getMe":
            return {
                "id": BOT_ID,
                "is_bot": True,
                "first_name": "kindbot",
                "username": BOT_USERNAME,
                "can_join_groups": True,
                "can_read_all_group_messages": False,
                "supports_inline_queries": False,
            }
        if method in ("sendMessage", "sendPhoto", "sendDocument", "editMessageText"):
            message: dict[str, Any] = {
                "message_id": params.get("message_id") or next(self._ids),
                "date": int(time.time()),
                "chat": {"id": params.get("chat_id", 0), "type": "private"},
                "from": {"id": BOT_ID, "is_bot": True, "first_name": "kindbot"},
            }
            if "text" in params:
                message["text"] = params["text"]
            if params.get("reply_markup"):
                message["reply_markup"] = params["reply_markup"]
            return message
        return True

    def would_confirm(self, offset: int) -> bool:
        """Whether a getUpdates with this offset confirms an update not confirmed before."""
        with self._lock:
            return any(self.confirmed <= u["update_id"] < offset for u in self.updates)

    def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        """Everything from the offset on, at most `limit` (Telegram's default and most: 100)."""
        offset = int(params.get("offset") or 0)
        limit = min(int(params.get("limit") or 100), 100)
        deadline = time.monotonic() + min(float(params.get("timeout") or 0), 0.5)
        with self._lock:
            self.confirmed = max(self.confirmed, offset)
            while True:
                ready = [u for u in self.updates if u["update_id"] >= self.confirmed]
                left = deadline - time.monotonic()
                if ready or left <= 0:
                    return ready[:limit]
                self._lock.wait(left)
