"""A fake Telegram Bot API for tests and benchmarks: in process and over HTTP.

`BotAPI` answers Bot API methods and records every call (method and parameters).
`FakeRequest` puts it at PTB's network seam (a `BaseRequest`), so the real `Application`
runs offline; `FakeBotServer` serves it over HTTP on 127.0.0.1 for `kindbot run` in a
subprocess (polling through getUpdates, or TELEGRAM_API_URL for a webhook bot's replies).
`Updates` builds update dicts the way Telegram sends them.

Failures can be injected per method: `api.fail("sendMessage", "retry_after")` makes the next
sendMessage answer 429; "forbidden" (403), "bad_request" (400) and "network" (a connection
error raised by the request layer) work the same way.

For crash tests, `api.intercept` sees every request as it arrives, before anything is recorded
or applied (a getUpdates offset included), and may drop it: the request then never reached
Telegram (the server closes the connection unanswered). `WebhookPusher` delivers updates to a
webhook bot the way Telegram does: POSTed with the secret header, again until a 200 comes.
"""

from __future__ import annotations

import asyncio
import http.client
import itertools
import json
import queue
import re
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

from telegram import Update
from telegram.error import NetworkError
from telegram.ext import BaseUpdateProcessor
from telegram.request import BaseRequest, RequestData

from bot.app import App
from bot.telegram.application import TgApplication, build_application, sender_of
from bot.telegram.budget import SendBudget
from bot.telegram.errors import Delivery

TOKEN = "123456789:" + "A" * 35
BOT_ID = 123456789
BOT_USERNAME = "kindbot_test_bot"


_JSON_STARTS = frozenset('{["-0123456789tfn')


class VirtualTime:
    """The send budget's clock in tests: a wait moves time on at once (never backwards), so
    nothing waits for real and the times the budget saw can be checked exactly."""

    def __init__(self, start: float = 1000.0) -> None:
        self.t = start
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += max(0.0, seconds)
        await asyncio.sleep(0)


class Dropped(Exception):
    """A request `BotAPI.intercept` refused: Telegram never saw it, and it gets no answer."""


@dataclass
class Call:
    method: str
    params: dict[str, Any]

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

    def fail(self, method: str, kind: str, times: int = 1) -> None:
        with self._lock:
            self.failures[method].extend([kind] * times)

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
        if method == "getUpdates":
            return 200, {"ok": True, "result": self._get_updates(params)}
        with self._lock:
            self.calls.append(Call(method, params))
        failure = self.failure_for(method)
        if failure == "retry_after":
            return 429, {
                "ok": False,
                "error_code": 429,
                "description": "Too Many Requests: retry after 1",
                "parameters": {"retry_after": 1},
            }
        if failure == "forbidden":
            return 403, {
                "ok": False,
                "error_code": 403,
                "description": "Forbidden: bot was blocked by the user",
            }
        if failure == "unauthorized":
            return 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
        if failure == "bad_request":
            return 400, {"ok": False, "error_code": 400, "description": "Bad Request: nope"}
        return 200, {"ok": True, "result": self._result(method, params)}

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
        offset = int(params.get("offset") or 0)
        deadline = time.monotonic() + min(float(params.get("timeout") or 0), 0.5)
        with self._lock:
            self.confirmed = max(self.confirmed, offset)
            while True:
                ready = [u for u in self.updates if u["update_id"] >= self.confirmed]
                left = deadline - time.monotonic()
                if ready or left <= 0:
                    return ready
                self._lock.wait(left)


class FakeRequest(BaseRequest):
    """PTB's network seam, answered by a `BotAPI`; `latency` simulates the round trip."""

    def __init__(self, api: BotAPI, *, latency: float = 0.0) -> None:
        self.api = api
        self.latency = latency

    @property
    def read_timeout(self) -> float | None:
        return 5.0

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = None,
        write_timeout: Any = None,
        connect_timeout: Any = None,
        pool_timeout: Any = None,
    ) -> tuple[int, bytes]:
        api_method = url.rsplit("/", 1)[-1]
        if self.latency:
            await asyncio.sleep(self.latency)
        if self.api.failure_for(f"network:{api_method}"):
            raise NetworkError("connection reset (fake)")
        params = dict(request_data.parameters) if request_data else {}
        if request_data and request_data.multipart_data:
            # uploaded files, as (file name, bytes), so tests can read what was sent
            params["_files"] = {
                name: (part[0], part[1]) for name, part in request_data.multipart_data.items()
            }
        try:
            status, body = self.api.answer(api_method, params)
        except Dropped:
            raise NetworkError("connection closed unanswered (fake)") from None
        return status, json.dumps(body).encode()


class _QuietServer(ThreadingHTTPServer):
    """A client that went away mid-request (a bot killed on purpose) is not an error. The
    backlog is deep: a bot opens a connection per request, and with the default 5 a burst
    overflows it and some connects wait a second for the kernel's SYN retry."""

    request_queue_size = 128

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


_RUN = re.compile(r"^/run(\d+)/")


class FakeBotServer:
    """The same fake over HTTP: POST /bot<token>/<method>, on 127.0.0.1 and a free port."""

    def __init__(self, api: BotAPI | None = None) -> None:
        self.api = api or BotAPI()
        fake = self.api

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode("utf-8", "replace")
                kind = self.headers.get("Content-Type", "")
                if "json" in kind:
                    params = json.loads(body or "{}")
                elif "multipart" in kind:
                    params = {}  # files: the call is recorded, its content is not needed
                else:
                    params = dict(parse_qsl(body, keep_blank_values=True))
                run = _RUN.match(self.path)  # "/run<N>/bot…": which process asks (crash tests)
                if run is not None:
                    params["_caller"] = int(run.group(1))
                try:
                    status, answer = fake.answer(self.path.rsplit("/", 1)[-1], params)
                except Dropped:
                    self.close_connection = True
                    return
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> FakeBotServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def chat_of(update: dict[str, Any]) -> int:
    """The chat an update belongs to (the person, for a button press)."""
    for kind in ("message", "edited_message", "my_chat_member"):
        if kind in update:
            return int(update[kind]["chat"]["id"])
    query = update.get("callback_query") or {}
    return int((query.get("message") or {}).get("chat", query.get("from", {})).get("id", 0))


class WebhookPusher:
    """Telegram's side of a webhook: each update POSTed to `url` with the secret header, again
    every `retry` seconds until the bot answers 200. Chats are served side by side, each in
    order: a chat's next update waits until the one before it is confirmed.

    `on_answer(update, status)` may say False to a 200: the answer was lost on the way (the
    update counts as unconfirmed and is delivered again).
    """

    def __init__(
        self,
        url: str,
        secret: str,
        *,
        retry: float = 0.25,
        on_answer: Callable[[dict[str, Any], int], bool] | None = None,
    ) -> None:
        self.url = url
        self.secret = secret
        self.retry = retry
        self.on_answer = on_answer
        self.confirmed: set[int] = set()
        self.attempts: defaultdict[int, int] = defaultdict(int)
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._chats: dict[int, queue.SimpleQueue[dict[str, Any] | None]] = {}
        self._threads: list[threading.Thread] = []

    def push_update(self, update: dict[str, Any]) -> None:
        chat = chat_of(update)
        with self._lock:
            waiting = self._chats.get(chat)
            if waiting is None:
                waiting = self._chats[chat] = queue.SimpleQueue()
                thread = threading.Thread(target=self._serve, args=(waiting,), daemon=True)
                self._threads.append(thread)
                thread.start()
        waiting.put(update)

    def is_confirmed(self, update_id: int) -> bool:
        with self._lock:
            return update_id in self.confirmed

    def stop(self) -> None:
        self._stopped.set()
        with self._lock:
            for waiting in self._chats.values():
                waiting.put(None)
        for thread in self._threads:
            thread.join(timeout=15)

    def _serve(self, waiting: queue.SimpleQueue[dict[str, Any] | None]) -> None:
        while (update := waiting.get()) is not None and not self._stopped.is_set():
            self._deliver(update)

    def _post(self, update: dict[str, Any]) -> int:
        headers = {
            "Content-Type": "application/json",
            "X-Telegram-Bot-Api-Secret-Token": self.secret,
        }
        request = urllib.request.Request(self.url, json.dumps(update).encode(), headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status: int = response.status
                return status
        except urllib.error.HTTPError as exc:
            return exc.code
        except (OSError, ValueError, http.client.HTTPException):  # refused, reset, unanswered
            return 0

    def _deliver(self, update: dict[str, Any]) -> None:
        update_id = int(update["update_id"])
        while not self._stopped.is_set():
            with self._lock:
                self.attempts[update_id] += 1
            status = self._post(update)
            if status == 200 and (self.on_answer is None or self.on_answer(update, status)):
                with self._lock:
                    self.confirmed.add(update_id)
                return
            self._stopped.wait(self.retry)


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
        return self.message(user_id, photo=[size], caption="my thought")

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


@dataclass
class Harness:
    """The real Application on a fake Bot API: send updates, read what the bot sent."""

    app: App
    application: TgApplication
    api: BotAPI
    updates: Updates
    sleeps: list[float] = field(default_factory=list)

    @property
    def budget(self) -> SendBudget:
        """The send budget every message of this Application goes through."""
        return sender_of(self.application).renderer.delivery.budget

    async def process(self, update: dict[str, Any]) -> list[Call]:
        """Process one update to the end; the Bot API calls it caused."""
        before = len(self.api.calls)
        await self.application.process_update(Update.de_json(update, self.application.bot))
        return self.api.calls[before:]

    async def say(self, user_id: int, text: str) -> list[Call]:
        return await self.process(self.updates.text(user_id, text))

    def last_offer(self, user_id: int) -> Call:
        """The latest message to this person that had buttons."""
        for call in reversed(self.api.sent("sendMessage", user_id)):
            if call.buttons:
                return call
        raise AssertionError("no message with buttons was sent")

    async def press(self, user_id: int, label: str) -> list[Call]:
        """Press the button with this label on the latest message that had buttons."""
        offer = self.last_offer(user_id)
        return await self.process(self.updates.press(user_id, offer.data_for(label), offer))


@asynccontextmanager
async def harness(
    app: App,
    api: BotAPI | None = None,
    *,
    latency: float = 0.0,
    sleep: Any = None,
    processor: BaseUpdateProcessor | None = None,
    budget: SendBudget | None = None,
) -> AsyncIterator[Harness]:
    """An initialized Application for `app` (inside `async with application`); its send
    budget runs on `VirtualTime` unless one is given."""
    api = api or BotAPI()
    sleeps: list[float] = []

    async def no_wait(seconds: float) -> None:
        sleeps.append(seconds)

    application = build_application(
        app,
        request=FakeRequest(api, latency=latency),
        updates_request=FakeRequest(api, latency=latency),
        delivery=Delivery(
            backoff=0.0, sleep=no_wait, budget=budget or SendBudget(timer=VirtualTime())
        ),
        sleep=sleep or no_wait,
        processor=processor,
    )
    async with application:
        yield Harness(app, application, api, Updates(), sleeps)
