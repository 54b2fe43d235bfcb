"""One budget for every message kindbot sends to Telegram: replies first, reminders from
what is left.

Telegram's limits (Bot API FAQ): about 30 messages a second overall, about one a second in
one chat (short bursts pass), 20 a minute in a group. Every message — a reply, a reminder, the
one line a group gets — takes a slot here before it goes:

- overall, `OVERALL`: 27 a second with a burst of 4, so never more than 30 in any second;
- per private chat, `PRIVATE_CHAT`: one a second with a burst of 4, so the few messages one
  step says go at once and a conversation never waits on the limit;
- per group (negative chat ids), `GROUP`: 20 a minute, no burst.

Each limit is a GCRA, a token bucket kept as one number per key (the theoretical arrival
time). A send is granted only at the moment it can go — nothing is booked ahead — and is then
counted in both of its buckets, so the limits hold for the times sends start, whatever the
order callers wake in. Replies are urgent: while one waits for the overall limit, background
sends (reminders) take no slot, so a reminder backlog delays a reply by at most one slot.

A 429 (`hold`) stops that chat for `retry_after`, and background sends everywhere for as long:
a 429 says we are near Telegram's limit, and reminders can wait where a person should not.

The budget is per process. With several workers, reminders also go through the shared bucket
in the database, and each worker reports its replies of the last second to it
(`recent_urgent`), so reminders across the workers use what replies leave.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Rate:
    """`per_second` sustained, `burst` at once: in any window of T seconds, fewer than
    `burst + per_second × T` sends."""

    per_second: float
    burst: int = 1

    @property
    def interval(self) -> float:
        return 1.0 / self.per_second

    @property
    def tolerance(self) -> float:
        return (self.burst - 1) * self.interval


OVERALL = Rate(27.0, burst=4)
PRIVATE_CHAT = Rate(1.0, burst=4)
GROUP = Rate(20 / 60, burst=1)
RECENT = 1.0  # seconds of urgent sends reported to the shared bucket
EPSILON = 1e-6  # seconds: sums of intervals are not exact in floating point


class Timer(Protocol):
    """Monotonic seconds and a way to wait; tests give a virtual one."""

    def monotonic(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class RealTime:
    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class SendBudget:
    """Slots for messages (see the module docstring); `take` before every send."""

    def __init__(
        self,
        *,
        overall: Rate = OVERALL,
        chat: Rate = PRIVATE_CHAT,
        group: Rate = GROUP,
        timer: Timer | None = None,
    ) -> None:
        self.overall = overall
        self.chat = chat
        self.group = group
        self.timer = timer or RealTime()
        self._all = -math.inf  # the overall bucket's theoretical arrival time
        self._chats: dict[int, float] = {}  # per chat, the same; dropped once full again
        self._held: dict[int, float] = {}  # chat → held until (429)
        self._background_until = -math.inf
        self._urgent_waiting = 0  # urgent sends waiting for the overall limit
        self._recent: deque[float] = deque()  # when urgent sends went, the last second
        self._tidy_at = 1024
        self.waited = 0.0  # seconds spent waiting, all callers together

    def _rate(self, chat_id: int) -> Rate:
        return self.group if chat_id < 0 else self.chat

    async def take(self, chat_id: int, *, urgent: bool = True) -> None:
        """Wait until a message to `chat_id` may go, and count it. `urgent` (a reply to a
        person) goes before every background send waiting for the overall limit."""
        rate = self._rate(chat_id)
        waiting = False  # counted in `_urgent_waiting`: the overall limit is what holds us
        try:
            while True:
                now = self.timer.monotonic()
                mine = max(
                    self._chats.get(chat_id, now) - rate.tolerance,
                    self._held.get(chat_id, now),
                )
                everyone = self._all - self.overall.tolerance
                if not urgent:
                    everyone = max(everyone, self._background_until)
                    if self._urgent_waiting and everyone <= now + EPSILON:
                        everyone = now + self.overall.interval  # after the waiting replies
                at = max(now, mine, everyone)
                if at <= now + EPSILON:
                    self._count(chat_id, rate, now, urgent)
                    return
                held_by_all = urgent and everyone >= mine and everyone > now + EPSILON
                if held_by_all != waiting:
                    self._urgent_waiting += 1 if held_by_all else -1
                    waiting = held_by_all
                self.waited += at - now
                await self.timer.sleep(at - now)
        finally:
            if waiting:
                self._urgent_waiting -= 1

    def hold(self, chat_id: int, seconds: float) -> None:
        """Telegram said 429, retry after `seconds`: that chat waits, and so do background
        sends everywhere."""
        until = self.timer.monotonic() + max(0.0, seconds)
        self._held[chat_id] = max(self._held.get(chat_id, until), until)
        self._background_until = max(self._background_until, until)

    def recent_urgent(self) -> int:
        """Urgent sends of the last second not reported before (for the shared bucket)."""
        self._forget_before(self.timer.monotonic() - RECENT)
        count = len(self._recent)
        self._recent.clear()
        return count

    def _count(self, chat_id: int, rate: Rate, now: float, urgent: bool) -> None:
        self._chats[chat_id] = max(self._chats.get(chat_id, now), now) + rate.interval
        self._all = max(self._all, now) + self.overall.interval
        if urgent:
            self._forget_before(now - RECENT)
            self._recent.append(now)
        if len(self._chats) + len(self._held) >= self._tidy_at:
            self._tidy(now)

    def _forget_before(self, since: float) -> None:
        while self._recent and self._recent[0] < since:
            self._recent.popleft()

    def _tidy(self, now: float) -> None:
        """Drop chats whose bucket is full again and holds that are over (amortized O(1))."""
        self._chats = {k: t for k, t in self._chats.items() if t > now}
        self._held = {k: t for k, t in self._held.items() if t > now}
        self._tidy_at = max(1024, 2 * (len(self._chats) + len(self._held)))
