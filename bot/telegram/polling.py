"""Long polling that confirms an update to Telegram only after it has been handled.

PTB's Updater asks for the next updates, and so confirms the last ones, as soon as it has
queued them, before any handler ran: a crash in between loses them for good. Here the offset
sent with getUpdates is the smallest update id not yet finished, so Telegram keeps whatever
is unfinished and sends it again to the next process.

Telegram answers with everything from the offset on (up to 100 updates), so updates already
running or finished behind an unfinished one come back; they are known by id and never
handled twice. The price of confirming in order: while one update is slow, only the 100 from
the offset on can be fetched, and new ones are looked for every `idle` seconds rather than by
a long poll (Telegram answers at once while any update is unconfirmed).

Every update started here is counted once it ends, in `kindbot_updates_total{source="polling"}`
(updates fetched again while unconfirmed are not counted again).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import warnings
from collections.abc import Sequence
from datetime import timedelta
from functools import partial
from typing import Any

from telegram import Update
from telegram.error import EndPointNotFound, Forbidden, InvalidToken, RetryAfter
from telegram.ext import Application
from telegram.warnings import PTBUserWarning

from bot import metrics
from bot.telegram.handlers import UPDATES

log = logging.getLogger(__name__)

AnyApplication = Application[Any, Any, Any, Any, Any, Any]
# Seconds a getUpdates may take beyond its long-poll timeout before it counts as lost.
READ_SLACK = 5.0
# getUpdates goes through do_api_request on purpose (see Poller._get_updates).
warnings.filterwarnings("ignore", message="Please use 'Bot.getUpdates'", category=PTBUserWarning)


class PollingRefused(Exception):
    """Telegram refuses getUpdates for this token: polling cannot go on."""


async def process(application: AnyApplication, update: Update) -> bool:
    """Handle one update to the end through the application's (per-person ordered) processor;
    False if it failed outside its handler (counted as "failed", never retried).

    Shared by polling and the webhook. A failure inside counts as handled: PTB already gave it
    to the error handler, which answered the person; the handlers see to durability."""
    try:
        await application.update_processor.process_update(
            update, application.process_update(update)
        )
    except Exception as exc:
        log.error("update %d failed outside its handler (%s)", update.update_id, type(exc).__name__)
        return False
    return True


class Poller:
    """getUpdates in a loop; each update handled in its own task; confirmed once finished."""

    def __init__(
        self,
        application: AnyApplication,
        *,
        timeout: float = 10,
        allowed_updates: Sequence[str] | None = UPDATES,
        idle: float = 0.25,
        retry: tuple[float, float] = (1.0, 30.0),
        drain: float = 30.0,
    ) -> None:
        self.application = application
        self.timeout = timeout
        self.allowed_updates = list(allowed_updates) if allowed_updates is not None else None
        self.idle = idle  # how long to wait for a finish when nothing new came
        self.retry = retry  # first and longest pause after a failed getUpdates
        self.drain = drain  # how long `stop` waits for running updates
        self._unfinished: dict[int, asyncio.Task[bool]] = {}  # a cancelled one stays here
        self._finished: set[int] = set()  # finished, not yet below a confirmed offset
        self._next = 0  # one past the highest update id received
        self._confirmed = 0
        self._progress = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopped = False

    @property
    def offset(self) -> int:
        """The smallest update id not finished: everything below it may be confirmed."""
        return min(self._unfinished, default=self._next)

    @property
    def confirmed(self) -> int:
        """The offset of the last getUpdates Telegram answered: updates below it are gone."""
        return self._confirmed

    @property
    def in_flight(self) -> int:
        """How many updates are being handled now."""
        return sum(not task.done() for task in self._unfinished.values())

    @property
    def task(self) -> asyncio.Task[None]:
        """The polling loop: it ends only when stopped, or raises `PollingRefused`."""
        if self._task is None:
            raise RuntimeError("the poller was not started")
        return self._task

    async def start(self) -> None:
        """Make sure no webhook is set (Telegram refuses getUpdates then), and start polling."""
        if self._task is not None:
            raise RuntimeError("the poller was started already")
        await self.application.bot.delete_webhook()
        self._task = asyncio.create_task(self._poll(), name="kindbot:polling")

    async def stop(self, *, drain: float | None = None) -> None:
        """Stop fetching, let running updates finish (at most `drain` seconds; the rest are
        cancelled and stay unconfirmed), then confirm what finished."""
        task = self._task
        if task is None or self._stopped:
            return
        self._stopped = True
        while not task.done():
            # Again until it ends: a cancel can be lost (one arriving as an awaited result
            # comes in is swallowed in places); the loop also checks `_stopped`.
            task.cancel()
            await asyncio.wait({task}, timeout=1)
        if not task.cancelled():
            task.exception()  # a refusal: whoever runs the poller sees it through `task`
        running = [t for t in self._unfinished.values() if not t.done()]
        if running:
            _, late = await asyncio.wait(running, timeout=self.drain if drain is None else drain)
            if late:
                log.warning("%d update(s) still running at stop: left unconfirmed", len(late))
                for left in late:
                    left.cancel()
                await asyncio.wait(late)
        await self._confirm()

    async def _poll(self) -> None:
        pause = self.retry[0]
        while not self._stopped:
            offset = self.offset
            try:
                updates = await self._get_updates(offset, self.timeout)
            except (InvalidToken, EndPointNotFound, Forbidden) as exc:
                # (do_api_request reports a refused token as EndPointNotFound once the bot
                # is initialized: getUpdates itself always exists)
                name = "InvalidToken" if isinstance(exc, EndPointNotFound) else type(exc).__name__
                raise PollingRefused(
                    f"Telegram refuses getUpdates ({name}): "
                    "check TELEGRAM_BOT_TOKEN with @BotFather"
                ) from None
            except RetryAfter as exc:
                wait = _seconds(exc.retry_after)
                log.warning("getUpdates: Telegram asks to wait %.0f s", wait)
                await asyncio.sleep(wait)
                continue
            except Exception as exc:  # network, Conflict, or updates PTB cannot read
                log.warning("getUpdates failed (%s); again in %.0f s", type(exc).__name__, pause)
                await asyncio.sleep(pause)
                pause = min(pause * 2, self.retry[1])
                continue
            pause = self.retry[0]
            if self._stopped:
                return  # what came stays unconfirmed, for the next process
            fresh = 0
            for data in updates:
                update_id = _update_id(data)
                if update_id is None or not self._is_new(update_id, offset):
                    continue
                fresh += 1
                try:
                    update = Update.de_json(data, self.application.bot)
                except Exception as exc:
                    self._unreadable(update_id, exc)
                    continue
                self._begin(update)
            if not fresh and (updates or not self.timeout):
                await self._settle(offset)

    async def _get_updates(
        self, offset: int, wait: float, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Telegram's updates as JSON: only new ones are parsed (those fetched again while
        unconfirmed are known by id), and one PTB cannot read is skipped alone — PTB's
        get_updates raises for the whole batch (polling would stall on it for good) and logs
        the batch's content."""
        params: dict[str, Any] = {"timeout": wait, "limit": limit}
        if offset:
            params["offset"] = offset
        if self.allowed_updates is not None:
            params["allowed_updates"] = self.allowed_updates
        result = await self.application.bot.do_api_request(
            "getUpdates", api_kwargs=params, read_timeout=wait + READ_SLACK
        )
        self._confirmed = max(self._confirmed, offset)
        self._finished = {u for u in self._finished if u >= self._confirmed}
        return [u for u in result if isinstance(u, dict)] if isinstance(result, list) else []

    def _unreadable(self, update_id: int, exc: Exception) -> None:
        """An update PTB cannot parse: finished, so it is confirmed and the rest go on."""
        log.error("update %d could not be read (%s); skipped", update_id, type(exc).__name__)
        metrics.update("polling", "unreadable")
        self._next = max(self._next, update_id + 1)
        self._finished.add(update_id)

    def _is_new(self, update_id: int, offset: int) -> bool:
        return (
            update_id >= offset
            and update_id not in self._unfinished
            and update_id not in self._finished
        )

    def _begin(self, update: Update) -> None:
        update_id = update.update_id
        self._next = max(self._next, update_id + 1)
        task = asyncio.create_task(process(self.application, update), name=f"update:{update_id}")
        self._unfinished[update_id] = task
        task.add_done_callback(partial(self._done, update_id))

    def _done(self, update_id: int, task: asyncio.Task[bool]) -> None:
        if task.cancelled():
            metrics.update("polling", "cut_off")
            return  # never finished: it keeps the offset where it is
        metrics.update("polling", "handled" if task.result() else "failed")
        del self._unfinished[update_id]
        self._finished.add(update_id)
        self._progress.set()

    async def _settle(self, sent: int) -> None:
        """Nothing new came: wait until the offset moves past the one `sent` (an update
        finished that lets more be confirmed), or `idle` seconds (to look for new ones).

        Not at every finish: while replies wait for Telegram's per-chat limit, updates end one
        by one behind an earlier one still running, and fetching again after each brought back
        the same unconfirmed batch, parsed for nothing (bench.http, people writing faster
        than one message a second: getUpdates fell from 14% to 10% of the bot's CPU)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.idle):
                while self.offset <= sent:
                    self._progress.clear()
                    await self._progress.wait()

    async def _confirm(self) -> None:
        """One last short getUpdates, as PTB does on stop, so a clean restart does not see
        the finished updates again; what it returns is left for the next process."""
        offset = self.offset
        if offset <= self._confirmed:
            return
        try:
            await self._get_updates(offset, 0, limit=1)
        except Exception as exc:
            log.warning("could not confirm the last updates (%s)", type(exc).__name__)


def _update_id(data: dict[str, Any]) -> int | None:
    value = data.get("update_id")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _seconds(value: int | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)
