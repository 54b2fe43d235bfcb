"""Crash-test machinery: `kindbot run` in a subprocess, killed and restarted by a fake Telegram.

People talk to the bot through `FakeBotServer` (polling) or a `WebhookPusher` (webhook). Each
sends their next update only once the whole answer to the previous one has arrived: every
reply the run without kills gave that step (the run without kills itself waits for a reply,
the button pressed next, and `QUIET`). A person who hears nothing more for `GIVE_UP` seconds
while the update is confirmed and the bot is up counts that step as unanswered and goes on
with their script; replies that come later are counted as late. A
`Supervisor` runs the bot process and kills it (SIGKILL) at points chosen by a seeded plan,
spread over the conversations (the n-th kill is armed once about n/kills of all replies are
out) and decided by the fake as a request arrives, before it is answered:

- "send": at a sendMessage. The step is committed, its reply not delivered (between commit
  and send); the fake does not record that message.
- "confirm": polling, at a getUpdates whose offset would confirm an update not confirmed
  before (the fake does not apply it); webhook, as the bot's 200 arrives (Telegram counts
  it as lost). Between send and confirm.
- "request": at the n-th request of any kind (start-up calls, typing, edits, long polls).
- "moment": a timer, at any point of the bot's life (start-up included). A plan whose request
  does not come within `NO_TRAFFIC` seconds becomes one; so does every kill left once all
  people are done (the bot is then killed idle: a restart must not send anything again).

A kill first freezes the fake: requests arriving from then on are held and, once the bot is
dead, dropped (never seen by Telegram). The kill waits until `SETTLE` seconds have passed
since the fake last accepted a message, so a message Telegram accepted is never lost on its
way back to the bot: a kill there would make a second copy unavoidable for any bot, and the
test asks for none.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sqlmodel import col, select

from bot.config import REPO_ROOT
from bot.testing.botapi import TOKEN, BotAPI, Call
from bot.testing.loopback import FakeBotServer, WebhookPusher
from bot.testing.updates import Updates
from storage import repo
from storage.crypto import Cipher
from storage.db import Database
from storage.models import User

CALLER = "_caller"  # the fake adds the caller's run number (from the URL path) to its params
SETTLE = 0.3  # s since Telegram last accepted a message before a kill (see the docstring)
MIN_FREEZE = 0.05  # s: a request already on the wire reaches the frozen fake, not a new bot
GIVE_UP = 1.5  # s of silence, with the bot up and the update confirmed: a step is unanswered
STEP_TIMEOUT = 30.0  # s: unanswered whatever else happens
QUIET = 0.5  # s: a run without kills takes a step as answered after this long without a word
FINAL_SETTLE = 2.0  # s the last bot runs, idle, before the verdict (late replies, copies)
START_TIMEOUT = 30.0  # s for a bot to come up
NO_TRAFFIC = 6.0  # s after start-up: a plan whose request has not come becomes a "moment"
DELIVERIES = frozenset({"sendMessage", "sendPhoto", "sendDocument", "editMessageText"})
REPLIES = frozenset({"sendMessage", "sendPhoto", "sendDocument"})

SECRET = "crash-test_Secret-1"  # the webhook's secret token

Kind = Literal["send", "confirm", "request", "moment"]
Step = tuple[Literal["say", "press"], str]


# -- people -------------------------------------------------------------------------------
THOUGHTS = [
    "I ruin everything I touch",
    "I always let people down",
    "I'm too slow at everything",
    "I never finish what I start",
    "I'm a bad friend",
    "I mess up every presentation",
    "I'm lazy and everyone can tell",
    "I can't do anything right at work",
    "I'm always the awkward one",
    "I never say the right thing",
]
FEELINGS = ["ashamed", "tired", "embarrassed", "frustrated", "sad", "anxious", "guilty"]
GOOD = [
    "I called my sister and we laughed",
    "the walk in the park this morning",
    "I cooked a proper dinner",
    "my plants are growing",
    "a colleague thanked me",
]


def say(text: str) -> Step:
    return ("say", text)


def press(label: str) -> Step:
    return ("press", label)


def script(n: int) -> list[Step]:
    """Person n's conversation: consent, a reframe to its closing summary (which quotes their
    thought), a low check-in that quotes what went well, buttons and plain texts."""
    thought, feeling = THOUGHTS[n % len(THOUGHTS)], FEELINGS[n % len(FEELINGS)]
    good = GOOD[n % len(GOOD)]
    friend = f"You are more than this moment, friend number {n}."
    kind = f"I am learning, and that is okay ({n})."
    onboarding = [say("/start"), press("Yes, that's okay"), press("Skip")]
    if n % 2 == 0:
        return [
            *onboarding,
            press("Work with a harsh thought"),
            say(thought),
            say(feeling),
            press("8"),
            press("I've noticed it"),
            press("I see it"),
            press("Okay"),
            press("A close friend"),
            say(friend),
            say(kind),
            press("3"),
            say("thank you"),  # the optional last question, then the close
            say("/checkin"),
            say("2/10"),
            press("Yes, note something good"),
            say(good),
            say("see you"),
        ]
    return [
        *onboarding,
        press("Check in with how I feel"),
        say("1"),
        press("Yes, note something good"),
        say(good),
        say("/reframe"),
        say(thought),
        say(feeling),
        say("7"),
        press("I've noticed it"),
        press("I see it"),
        press("Okay"),
        press("A close friend"),
        say(friend),
        say(kind),
        say("4"),
        say("thanks"),
    ]


def people(count: int, first_id: int = 7001) -> dict[int, list[Step]]:
    return {first_id + n: script(n) for n in range(count)}


def reply_key(call: Call) -> str:
    """A message as the person sees it: its text and its buttons (labels and what they do)."""
    buttons = " | ".join(f"{b['text']}={b['callback_data']}" for row in call.buttons for b in row)
    return f"{call.text}  [{buttons}]" if buttons else call.text


@dataclass
class Transcript:
    """What one person did and saw, step by step."""

    steps: list[Step]
    replies: list[list[str]] = field(default_factory=list)  # per step, in arrival order
    edits: list[str] = field(default_factory=list)
    offers: dict[int, Call] = field(default_factory=dict)  # step -> the message pressed on
    unanswered: list[int] = field(default_factory=list)  # steps given up on
    late: int = 0  # replies that came for a step after it was given up on

    def lines(self) -> list[str]:
        out: list[str] = []
        for index, (kind, value) in enumerate(self.steps[: len(self.replies)]):
            out.append(f"> {value}" if kind == "say" else f"> [{value}]")
            out.extend(f"< {reply}" for reply in self.replies[index])
        return out

    def all_replies(self) -> list[str]:
        return [reply for step in self.replies for reply in step]


# -- the bot process ------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def bot_environment(data_dir: Path, key: str, api_url: str, **extra: str) -> dict[str, str]:
    """`kindbot run`'s environment: this tree's code, a fixed key, the fake's address."""
    drop = ("TELEGRAM_", "WEBHOOK_", "REMINDER_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    for name in ("DATABASE_URL", "DATA_DIR", "ENCRYPTION_KEY", "SEMANTIC_SCREEN"):
        env.pop(name, None)
    env.update(
        PYTHONPATH=str(REPO_ROOT),
        DATA_DIR=str(data_dir),
        ENCRYPTION_KEY=key,
        TELEGRAM_BOT_TOKEN=TOKEN,
        TELEGRAM_API_URL=api_url,
        LOG_LEVEL="INFO",
        # scripted people answer the moment a question arrives, faster than anyone reads:
        # to the split-message join that would be one answer typed in pieces
        SPLIT_SECONDS="0",
        QUIET_SECONDS="0",
        **extra,
    )
    return env


@dataclass
class Plan:
    """How the current bot process will be killed: once the conversations have reached
    `progress` (replies Telegram accepted, all people together), at the `count`-th matching
    request, or ("moment") `delay` seconds after arming but not before `after_start`."""

    kind: Kind
    progress: int
    count: int = 1
    delay: float = 0.0
    after_start: float = 0.0
    armed_at: float | None = None
    seen: int = 0


@dataclass
class Kill:
    incarnation: int
    kind: Kind
    trigger: str
    after: float  # seconds after that process started
    at: float  # time.monotonic() of the decision


class Supervisor:
    """The bot process, restarted after each kill; the fake consults it on every request."""

    def __init__(
        self,
        api: BotAPI,
        env: dict[str, str],
        cwd: Path,
        *,
        kills: int = 0,
        seed: int = 0,
        webhook: bool = False,
        replies: int = 0,
    ) -> None:
        """`replies`: how many replies the whole run makes; the kills are spread over them."""
        self.api = api
        self.env = env
        self.cwd = cwd
        self.webhook = webhook
        self.target = kills
        self.rng = random.Random(seed)
        kinds: list[Kind] = ["send", "confirm", "request", "moment"]
        weights = [0.35, 0.3, 0.2, 0.15]
        self.kinds: list[Kind] = [self.rng.choices(kinds, weights)[0] for _ in range(kills)]
        # the n-th kill once about n/kills of the replies are out (a little before: the last
        # kill must come while people still talk)
        span = max(replies - 4, kills)
        self.progress = [int((n + self.rng.random()) * span / kills) for n in range(kills)]
        self.delivered = 0  # replies Telegram accepted
        self.arm_all = False  # everyone has finished: the kills left come at once
        self.kills: list[Kill] = []
        self.log_path = cwd / "kindbot.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.incarnation = 0
        self.started_at = 0.0
        self.ready_at: float | None = None
        self.plan: Plan | None = None
        self.exited: str | None = None  # set if a bot stopped by itself
        self._cond = threading.Condition()
        self._frozen = False
        self._dead = True
        self._last_delivery = 0.0
        self.no_traffic = NO_TRAFFIC  # shortened once everyone has finished
        api.intercept = self.intercept

    # -- the process ---------------------------------------------------------------------
    def start(self) -> None:
        with self._cond:
            self.incarnation += 1
            with self.log_path.open("ab") as log:
                log.write(f"=== kindbot run #{self.incarnation} ===\n".encode())
                log.flush()
                # Each process talks to the fake under its own path, so a request a killed one
                # left in the socket (read by the fake only after the next one started: the
                # machine is busy) is told apart and dropped, as its sender is dead.
                env = {
                    **self.env,
                    "TELEGRAM_API_URL": f"{self.env['TELEGRAM_API_URL']}/run{self.incarnation}",
                }
                self.process = subprocess.Popen(
                    [sys.executable, "-m", "bot.cli", "run"],
                    cwd=self.cwd,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            self.started_at = time.monotonic()
            self.ready_at = None
            self.plan = self._next_plan()
            self._dead = False

    def _next_plan(self) -> Plan | None:
        n = len(self.kills)
        if n >= self.target:
            return None
        kind, progress = self.kinds[n], self.progress[n]
        if kind == "send":
            return Plan(kind, progress, count=self.rng.randint(1, 3))
        if kind == "confirm":
            return Plan(kind, progress, count=self.rng.randint(1, 2))
        if kind == "request":
            return Plan(kind, progress, count=self.rng.randint(1, 12))
        # (start-up takes about 1.3 s: some of these land in it)
        delay, after_start = self.rng.uniform(0.0, 0.6), self.rng.uniform(0.2, 2.5)
        return Plan(kind, progress, delay=delay, after_start=after_start)

    def _armed(self, plan: Plan, now: float) -> bool:
        if plan.armed_at is None and (self.arm_all or self.delivered >= plan.progress):
            plan.armed_at = now
        return plan.armed_at is not None

    def up_for(self, now: float) -> float:
        """How long the current bot has been serving (0 while it starts or is dead)."""
        with self._cond:
            if self._dead or self.ready_at is None:
                return 0.0
            return now - self.ready_at

    def tick(self) -> None:
        """Restart a killed bot; fire a due "moment" kill; notice a bot that stopped."""
        with self._cond:
            if self._dead:
                pass
            elif self.process is not None and self.process.poll() is not None:
                self.exited = (
                    f"kindbot run #{self.incarnation} exited with {self.process.returncode}"
                )
                self._dead = True
                return
            else:
                plan, now = self.plan, time.monotonic()
                if plan is None or not self._armed(plan, now):
                    return
                assert plan.armed_at is not None
                if plan.kind == "moment":
                    due = max(plan.armed_at + plan.delay, self.started_at + plan.after_start)
                    if now >= due:
                        self._crash("moment", "timer")
                    return
                waited = now - max(plan.armed_at, self.ready_at or now)
                if self.ready_at is not None and waited > self.no_traffic:
                    self._crash("moment", f"timer (no {plan.kind} came)")
                return
        if self.exited is None:
            self.start()

    def stop(self) -> int | None:
        """SIGTERM, as an operator would stop it; its exit code (None if already dead)."""
        with self._cond:
            self.plan = None
            process, dead = self.process, self._dead
        if process is None:
            return None
        if dead:
            process.wait(timeout=10)
            return None
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout=START_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
            return -9
        finally:
            with self._cond:
                self._dead = True

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    # -- what the fake asks ------------------------------------------------------------------
    def intercept(self, method: str, params: dict[str, Any]) -> bool:
        """Each request as it arrives: True to answer it, False to drop it (the bot is dead)."""
        caller = params.pop(CALLER, None)
        with self._cond:
            kills = len(self.kills)
            while self._frozen:
                self._cond.wait()
            if self._dead or len(self.kills) != kills:  # it came from a bot killed since
                return False
            if caller is not None and caller != self.incarnation:  # from a bot killed before
                return False
            now = time.monotonic()
            if self.ready_at is None and method in ("getUpdates", "setWebhook"):
                self.ready_at = now
            if self._triggers(method, params, now):
                assert self.plan is not None
                self._crash(self.plan.kind, method)
                return False
            if method in DELIVERIES:
                self._last_delivery = now
            if method in REPLIES:
                self.delivered += 1
            return True

    def webhook_answered(self, update: dict[str, Any], status: int) -> bool:
        """The bot answered a webhook POST: False if the answer is "lost" (a confirm kill)."""
        with self._cond:
            plan = self.plan
            if self._dead or self._frozen or plan is None or plan.kind != "confirm":
                return True
            if not self._armed(plan, time.monotonic()):
                return True
            plan.seen += 1
            if plan.seen < plan.count:
                return True
            self._crash("confirm", "webhook 200")
            return False

    def _triggers(self, method: str, params: dict[str, Any], now: float) -> bool:
        plan = self.plan
        if plan is None or plan.kind == "moment" or not self._armed(plan, now):
            return False
        if plan.kind == "send":
            matches = method == "sendMessage"
        elif plan.kind == "confirm":
            offset = int(params.get("offset") or 0)
            matches = not self.webhook and method == "getUpdates" and self.api.would_confirm(offset)
        else:
            matches = True
        if matches:
            plan.seen += 1
        return matches and plan.seen >= plan.count

    def _crash(self, kind: Kind, trigger: str) -> None:
        """Freeze the fake, let the bot take in what Telegram accepted, SIGKILL it (lock held)."""
        self._frozen = True
        frozen_at = time.monotonic()
        while (left := max(frozen_at + MIN_FREEZE, self._last_delivery + SETTLE)) > (
            now := time.monotonic()
        ):
            self._cond.wait(left - now)
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)
        self.kills.append(
            Kill(self.incarnation, kind, trigger, frozen_at - self.started_at, frozen_at)
        )
        self.plan = None
        self._dead = True
        self._frozen = False
        self._cond.notify_all()


# -- the people's side ----------------------------------------------------------------------
class Transport:
    """How updates reach the bot: getUpdates from the fake, or POSTs to its webhook."""

    def __init__(self, api: BotAPI, pusher: WebhookPusher | None = None) -> None:
        self.api = api
        self.pusher = pusher

    def push(self, update: dict[str, Any]) -> None:
        if self.pusher is None:
            self.api.push_update(update)
        else:
            self.pusher.push_update(update)

    def confirmed(self, update_id: int) -> bool:
        if self.pusher is None:
            return self.api.confirmed > update_id
        return self.pusher.is_confirmed(update_id)


@dataclass
class Person:
    id: int
    transcript: Transcript
    step: int = -1  # the step whose answer is awaited
    update_id: int = 0
    sent_at: float = 0.0
    heard_at: float = 0.0  # when the last message (or edit) for them arrived
    done: bool = False
    offers: list[Call] = field(default_factory=list)  # the messages with buttons they got
    first_offer: int = 0  # the first of them that came during the current step


@dataclass
class Expected:
    """What a run without kills gave: per person, the replies of each step and the offers."""

    transcripts: dict[int, Transcript]
    entries: dict[int, list[tuple[str, str, dict[str, Any]]]]


class Conversations:
    """Drives every person's script against the bot, one step at a time each."""

    def __init__(
        self,
        api: BotAPI,
        transport: Transport,
        supervisor: Supervisor,
        scripts: dict[int, list[Step]],
        expected: Expected | None = None,
    ) -> None:
        self.api = api
        self.transport = transport
        self.supervisor = supervisor
        self.expected = expected
        self.updates = Updates()
        self.people = {pid: Person(pid, Transcript(list(steps))) for pid, steps in scripts.items()}
        self._cursor = 0
        self.pushed: list[int] = []  # every update id, in order
        self.began = time.monotonic()
        self.timeline: list[tuple[float, str]] = []  # what happened when, for a reader

    def _note(self, at: float, person: Person, what: str) -> None:
        where = f"#{self.supervisor.incarnation}"
        self.timeline.append((at, f"{at - self.began:7.2f} {where:>4} {person.id} {what}"))

    def timeline_lines(self) -> list[str]:
        """Everyone's steps, replies and give-ups, and the kills, in order of time."""
        kills = [
            (k.at, f"{k.at - self.began:7.2f} #{k.incarnation:<3} KILL {k.kind} at {k.trigger}")
            for k in self.supervisor.kills
        ]
        return [line for _, line in sorted(self.timeline + kills)]

    def run(self, *, deadline: float) -> None:
        """Until everyone has finished, the planned kills are done and the last bot is idle."""
        finished_at: float | None = None
        while True:
            now = time.monotonic()
            if now > deadline:
                raise AssertionError(self._stuck("the run took too long"))
            self.supervisor.tick()
            if self.supervisor.exited:
                raise AssertionError(self._stuck(self.supervisor.exited))
            self._collect(now)
            for person in self.people.values():
                if not person.done:
                    self._advance(person, now)
            if all(p.done for p in self.people.values()):
                finished_at = finished_at or now
                self.supervisor.arm_all = True  # kills still planned: now, on an idle bot
                self.supervisor.no_traffic = GIVE_UP
                quiet = max((p.heard_at for p in self.people.values()), default=0.0)
                settled = (
                    len(self.supervisor.kills) >= self.supervisor.target
                    and self.supervisor.up_for(now) >= FINAL_SETTLE
                    and now - quiet >= QUIET
                )
                if settled and (self._all_confirmed() or now - finished_at > STEP_TIMEOUT):
                    self._collect(time.monotonic())
                    return
            time.sleep(0.01)

    def _collect(self, now: float) -> None:
        """New calls of the bot, to the people they were for."""
        calls = self.api.calls[self._cursor :]
        self._cursor += len(calls)
        for call in calls:
            person = self.people.get(call.chat_id)
            if person is None or person.step < 0:
                continue
            if call.method in REPLIES:
                self._late(person, reply_key(call))
                person.transcript.replies[person.step].append(reply_key(call))
                person.heard_at = now
                self._note(now, person, f"< {call.text[:60]!r}")
                if call.buttons:
                    person.offers.append(call)
            elif call.method in DELIVERIES:
                person.transcript.edits.append(call.text)
                person.heard_at = now
                self._note(now, person, f"  edit {call.text[-30:]!r}")

    def _late(self, person: Person, reply: str) -> None:
        """Count a reply that belongs to a step given up on, not to the current one."""
        if self.expected is None or not person.transcript.unanswered:
            return
        want = self.expected.transcripts[person.id].replies
        if reply in want[person.step]:
            return
        if any(reply in want[step] for step in person.transcript.unanswered):
            person.transcript.late += 1

    def _answered(self, person: Person, now: float) -> bool:
        replies = person.transcript.replies[person.step]
        if self.expected is not None:  # every reply the run without kills gave this step
            wanted = self.expected.transcripts[person.id].replies[person.step]
            return not Counter(wanted) - Counter(replies)
        # A run without kills learns the answers: some reply, the button the person presses
        # next (if they do), then quiet.
        steps = person.transcript.steps
        kind, label = steps[person.step + 1] if person.step + 1 < len(steps) else ("say", "")
        offered = kind != "press" or any(
            label in c.labels for c in person.offers[person.first_offer :]
        )
        return (
            bool(replies)
            and offered
            and self.transport.confirmed(person.update_id)
            and now - person.heard_at >= QUIET
        )

    def _give_up(self, person: Person, now: float) -> bool:
        if now - person.sent_at > STEP_TIMEOUT:
            return True
        if self.expected is None:
            return False
        silent = now - max(person.sent_at, person.heard_at)
        return (
            silent >= GIVE_UP
            and self.transport.confirmed(person.update_id)
            and self.supervisor.up_for(now) >= GIVE_UP
        )

    def _advance(self, person: Person, now: float) -> None:
        transcript = person.transcript
        if person.step >= 0:
            if self._answered(person, now):
                pass
            elif self._give_up(person, now):
                if self.expected is None:
                    raise AssertionError(self._stuck(f"person {person.id} got no answer"))
                transcript.unanswered.append(person.step)
                self._note(now, person, f"gave up on step {person.step}")
            else:
                return
        if person.step + 1 >= len(transcript.steps):
            person.done = True
            return
        person.step += 1
        person.first_offer = len(person.offers)
        transcript.replies.append([])
        kind, value = transcript.steps[person.step]
        if kind == "say":
            update = self.updates.text(person.id, value)
        else:
            offer = self._offer(person, value)
            transcript.offers[person.step] = offer
            update = self.updates.press(person.id, offer.data_for(value), offer)
        person.update_id = int(update["update_id"])
        person.sent_at = now
        self.pushed.append(person.update_id)
        self._note(now, person, f"> {value!r} (update {person.update_id}, step {person.step})")
        self.transport.push(update)

    def _offer(self, person: Person, label: str) -> Call:
        """The message to press `label` on: the one the run without kills pressed, as it came
        in this run; that run's own copy if it never came (an unanswered step)."""
        wanted: str | None = None
        if self.expected is not None:
            wanted = self.expected.transcripts[person.id].offers[person.step].data_for(label)
        for call in reversed(person.offers):
            if label in call.labels and (wanted is None or call.data_for(label) == wanted):
                return call
        if self.expected is not None:
            return self.expected.transcripts[person.id].offers[person.step]
        raise AssertionError(self._stuck(f"person {person.id}: no button {label!r} came"))

    def _all_confirmed(self) -> bool:
        return not self.unconfirmed()

    def unconfirmed(self) -> list[int]:
        """Updates Telegram would still deliver again (never confirmed)."""
        return [u for u in self.pushed if not self.transport.confirmed(u)]

    def _stuck(self, why: str) -> str:
        where = {pid: f"step {p.step}/{len(p.transcript.steps)}" for pid, p in self.people.items()}
        return f"{why}; people at {where}; kills {len(self.supervisor.kills)}\n" + (
            self.supervisor.log_tail()
        )

    def transcripts(self) -> dict[int, Transcript]:
        return {pid: p.transcript for pid, p in self.people.items()}


# -- the database ---------------------------------------------------------------------------
def read_entries(
    url: str, key: str, ids: list[int]
) -> dict[int, list[tuple[str, str, dict[str, Any]]]]:
    """Each person's entries (kind, status, decrypted answers), oldest first."""

    async def read() -> dict[int, list[tuple[str, str, dict[str, Any]]]]:
        db = await Database.open(url, Cipher.from_string(key), upgrade=None)
        found: dict[int, list[tuple[str, str, dict[str, Any]]]] = {}
        try:
            async with db.session() as session:
                for pid in ids:
                    query = select(User).where(
                        col(User.channel) == "telegram", col(User.external_id) == str(pid)
                    )
                    user = (await session.execute(query)).scalar_one_or_none()
                    if user is None or user.id is None:
                        found[pid] = []
                        continue
                    rows = sorted(
                        await repo.list_entries(session, user_id=user.id),
                        key=lambda e: e.id or 0,
                    )
                    found[pid] = [
                        (e.kind, e.status, repo.entry_answers(e, cipher=db.cipher)) for e in rows
                    ]
        finally:
            await db.close()
        return found

    return asyncio.run(read())


# -- the verdict ----------------------------------------------------------------------------
@dataclass
class Verdict:
    unanswered_steps: int = 0  # steps a person gave up waiting on
    missing: int = 0  # replies of the run without kills that never came
    twice: int = 0  # replies that came more often than in the run without kills
    unexpected: int = 0  # replies the run without kills never sent
    lost: int = 0  # entries missing or different in the database
    unconfirmed: int = 0  # updates never confirmed: Telegram would deliver them forever
    late: int = 0  # replies that came after their step was given up on, out of place
    reordered: int = 0  # people whose replies all came, in another order
    edits_missing: int = 0  # "→ choice" marks on pressed messages (not counted as failures)
    details: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (
            self.unanswered_steps
            or self.missing
            or self.twice
            or self.unexpected
            or self.lost
            or self.reordered
            or self.unconfirmed
        )

    def summary(self) -> str:
        return (
            f"unanswered steps {self.unanswered_steps} (their replies came late: {self.late}), "
            f"missing replies {self.missing}, "
            f"answered twice {self.twice}, unexpected replies {self.unexpected}, "
            f"lost entries {self.lost}, reordered {self.reordered}, "
            f"never confirmed {self.unconfirmed} "
            f"(pressed-message edits missing: {self.edits_missing}, not judged)"
        )


def judge(
    expected: Expected,
    transcripts: dict[int, Transcript],
    entries: dict[int, list[tuple[str, str, dict[str, Any]]]],
) -> Verdict:
    verdict = Verdict()
    for pid, want in expected.transcripts.items():
        got = transcripts[pid]
        verdict.unanswered_steps += len(got.unanswered)
        wanted, came = Counter(want.all_replies()), Counter(got.all_replies())
        missing = wanted - came
        verdict.late += got.late
        extra = came - wanted
        verdict.missing += sum(missing.values())
        verdict.twice += sum(n for reply, n in extra.items() if reply in wanted)
        verdict.unexpected += sum(n for reply, n in extra.items() if reply not in wanted)
        if not missing and not extra and got.all_replies() != want.all_replies():
            verdict.reordered += 1
        verdict.edits_missing += sum((Counter(want.edits) - Counter(got.edits)).values())
        for reply in missing:
            verdict.details.append(f"{pid} never got: {reply[:70]!r}")
        for reply in extra:
            verdict.details.append(f"{pid} got extra: {reply[:70]!r}")
        if entries.get(pid) != expected.entries.get(pid):
            have, need = entries.get(pid, []), expected.entries.get(pid, [])
            lost = max(len(need) - len(have), 0) + sum(
                a != b for a, b in zip(have, need, strict=False)
            )
            verdict.lost += max(lost, 1)
            verdict.details.append(f"{pid} entries: {have} instead of {need}")
    return verdict


@dataclass
class Report:
    verdict: Verdict
    kills: list[Kill]
    seconds: float
    transcripts: dict[int, Transcript]

    def kill_kinds(self) -> str:
        counts = Counter(kill.kind for kill in self.kills)
        return ", ".join(f"{kind} {n}" for kind, n in sorted(counts.items()))

    def message(self, name: str, seed: int, details: int | None = 25) -> str:
        """The counts, and the first `details` differences (None: all of them)."""
        shown = self.verdict.details[:details]
        lines = [
            f"{name} (seed {seed}): {len(self.kills)} kills ({self.kill_kinds()}) in "
            f"{self.seconds:.0f} s: {self.verdict.summary()}",
            *shown,
        ]
        if len(shown) < len(self.verdict.details):
            lines.append(f"… and {len(self.verdict.details) - len(shown)} more")
        return "\n".join(lines)


def each_line(transcripts: dict[int, Transcript]) -> Iterator[str]:
    for pid in sorted(transcripts):
        yield f"== {pid}"
        yield from transcripts[pid].lines()


# -- one whole run --------------------------------------------------------------------------
@dataclass
class Setup:
    """Where a run happens: a folder, the key, the database (None: SQLite there), the path."""

    folder: Path
    key: str
    database_url: str | None = None
    webhook: bool = False

    @property
    def url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.folder / 'data' / 'kindbot.db'}"


@dataclass
class Outcome:
    transcripts: dict[int, Transcript]
    entries: dict[int, list[tuple[str, str, dict[str, Any]]]]
    kills: list[Kill]
    seconds: float
    exit_code: int | None  # of the last bot, stopped with SIGTERM at the end
    starts: int
    unconfirmed: list[int]
    timeline: list[str]

    def report(self, expected: Expected) -> Report:
        verdict = judge(expected, self.transcripts, self.entries)
        verdict.unconfirmed = len(self.unconfirmed)
        return Report(verdict, self.kills, self.seconds, self.transcripts)


def talk(
    setup: Setup,
    scripts: dict[int, list[Step]],
    *,
    expected: Expected | None = None,
    kills: int = 0,
    seed: int = 0,
    timeout: float = 300.0,
) -> Outcome:
    """Everyone's script against `kindbot run` on a fake Telegram, with `kills` kills."""
    with FakeBotServer() as server:
        api = server.api
        extra: dict[str, str] = {}
        if setup.database_url:
            extra["DATABASE_URL"] = setup.database_url
        hook = ""
        if setup.webhook:
            port = free_port()
            hook = f"http://127.0.0.1:{port}/kindbot-hook"
            extra.update(
                WEBHOOK_URL=hook,
                WEBHOOK_SECRET=SECRET,
                WEBHOOK_LISTEN="127.0.0.1",
                WEBHOOK_PORT=str(port),
            )
        env = bot_environment(setup.folder / "data", setup.key, server.url, **extra)
        replies = (
            sum(len(t.all_replies()) for t in expected.transcripts.values()) if expected else 0
        )
        supervisor = Supervisor(
            api, env, setup.folder, kills=kills, seed=seed, webhook=setup.webhook, replies=replies
        )
        pusher = (
            WebhookPusher(hook, SECRET, on_answer=supervisor.webhook_answered)
            if setup.webhook
            else None
        )
        conversations = Conversations(api, Transport(api, pusher), supervisor, scripts, expected)
        began = time.monotonic()
        try:
            supervisor.start()
            conversations.run(deadline=began + timeout)
        finally:
            exit_code = supervisor.stop()
            if pusher is not None:
                pusher.stop()
        seconds = time.monotonic() - began
    entries = read_entries(setup.url, setup.key, list(scripts))
    return Outcome(
        conversations.transcripts(),
        entries,
        supervisor.kills,
        seconds,
        exit_code,
        supervisor.incarnation,
        conversations.unconfirmed(),
        conversations.timeline_lines(),
    )
