"""The dispatcher against a fake sender and an injectable clock: due, late, very late,
blocked, 429, failures, restart mid-batch, per-chat spacing, quiet skipping."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from bot.app import App
from bot.engine.events import Text, UserRef
from bot.reminders import store
from bot.reminders.sender import Blocked, RetryLater, SendFailed
from tests.conftest import Clock
from tests.reminder_fakes import (
    FakeSender,
    deliveries,
    dispatcher,
    make_person,
    schedules,
)

# 2026-03-02 is a Monday; Berlin is at UTC+1 until 29 March.
NINE_PM_BERLIN = datetime(2026, 3, 2, 20, 0, tzinfo=UTC)


async def test_sends_when_due_and_not_before(app: App, clock: Clock) -> None:
    uid = await make_person(app, "1", now=clock.now)
    sender = FakeSender(clock)
    worker = dispatcher(app, sender, clock)
    clock.now = NINE_PM_BERLIN - timedelta(seconds=1)
    assert await worker.tick() == 0
    clock.now = NINE_PM_BERLIN
    assert await worker.tick() == 1
    assert [s.external_id for s in sender.sent] == ["1"]
    assert "compassion" in sender.sent[0].texts[0] or "kind" in sender.sent[0].texts[0]
    [delivery] = await deliveries(app)
    assert (delivery.status, delivery.attempts, delivery.lease_owner) == ("sent", 1, None)
    [schedule] = await schedules(app, uid)
    assert store.as_utc(schedule.next_due_utc) == NINE_PM_BERLIN + timedelta(days=1)  # type: ignore[arg-type]
    assert await worker.tick() == 0  # nothing more today


async def test_less_than_an_hour_late_is_still_sent(app: App, clock: Clock) -> None:
    await make_person(app, "1", now=clock.now)
    sender = FakeSender(clock)
    clock.now = NINE_PM_BERLIN + timedelta(minutes=59)
    assert await dispatcher(app, sender, clock).tick() == 1
    assert len(sender.sent) == 1


async def test_more_than_an_hour_late_is_skipped_to_the_next_occurrence(
    app: App, clock: Clock
) -> None:
    uid = await make_person(app, "1", now=clock.now)
    sender = FakeSender(clock)
    clock.now = NINE_PM_BERLIN + timedelta(hours=1, minutes=1)
    worker = dispatcher(app, sender, clock)
    assert await worker.tick() == 0
    assert sender.sent == []
    [delivery] = await deliveries(app)
    assert (delivery.status, delivery.error) == ("skipped", "late")
    [schedule] = await schedules(app, uid)
    assert store.as_utc(schedule.next_due_utc) == NINE_PM_BERLIN + timedelta(days=1)  # type: ignore[arg-type]
    clock.now = NINE_PM_BERLIN + timedelta(days=1)
    assert await worker.tick() == 1


async def test_down_for_days_skips_once_and_resumes(app: App, clock: Clock) -> None:
    uid = await make_person(app, "1", now=clock.now)
    sender = FakeSender(clock)
    clock.now = NINE_PM_BERLIN + timedelta(days=3, hours=2)
    assert await dispatcher(app, sender, clock).tick() == 0
    assert [d.status for d in await deliveries(app)] == ["skipped"]
    [schedule] = await schedules(app, uid)
    assert store.as_utc(schedule.next_due_utc) == NINE_PM_BERLIN + timedelta(days=4)  # type: ignore[arg-type]


async def test_blocked_person_gets_nothing_until_they_come_back(app: App, clock: Clock) -> None:
    uid = await make_person(app, "1", now=clock.now)
    sender = FakeSender(clock, script={"1": [Blocked()]})
    worker = dispatcher(app, sender, clock)
    clock.now = NINE_PM_BERLIN
    await worker.tick()
    [delivery] = await deliveries(app)
    assert (delivery.status, delivery.error) == ("failed", "blocked")
    [schedule] = await schedules(app, uid)
    assert schedule.disabled_reason == "blocked"
    assert schedule.next_due_utc is None
    clock.now = NINE_PM_BERLIN + timedelta(days=1)
    assert await worker.tick() == 0
    # They come back (/start): the adapter calls reenable_for_user.
    resumed = await store.reenable_for_user(
        app.db, channel="telegram", external_id="1", now=clock.now
    )
    assert resumed == 1
    clock.now = NINE_PM_BERLIN + timedelta(days=2)
    assert await worker.tick() == 1
    assert len(sender.sent) == 1
    assert worker.stats.blocked == 1


async def test_429_waits_retry_after_and_sends_once(app: App, clock: Clock) -> None:
    await make_person(app, "1", now=clock.now)
    sender = FakeSender(clock, script={"1": [RetryLater(7)]})
    worker = dispatcher(app, sender, clock)
    clock.now = NINE_PM_BERLIN
    await worker.tick()
    assert sender.calls == 2
    assert len(sender.sent) == 1
    assert sender.sent[0].at >= NINE_PM_BERLIN + timedelta(seconds=7)
    [delivery] = await deliveries(app)
    assert (delivery.status, delivery.attempts) == ("sent", 1)


async def test_other_errors_are_retried_with_backoff_then_recorded(app: App, clock: Clock) -> None:
    await make_person(app, "1", now=clock.now)
    await make_person(app, "2", now=clock.now)
    sender = FakeSender(
        clock,
        script={"1": [SendFailed("x"), SendFailed("x")], "2": [SendFailed("x")] * 10},
    )
    worker = dispatcher(app, sender, clock, max_attempts=4)
    clock.now = NINE_PM_BERLIN
    await worker.tick()
    by_user = {d.user_id: d for d in await deliveries(app)}
    assert len(by_user) == 2
    assert sorted((d.status, d.attempts, d.error) for d in by_user.values()) == [
        ("failed", 4, "send_failed"),
        ("sent", 3, None),
    ]
    assert [s.external_id for s in sender.sent] == ["1"]
    slept = worker.clock.slept  # type: ignore[attr-defined]
    assert {1.0, 2.0, 4.0} <= set(slept)  # exponential backoff


async def test_restart_mid_batch_sends_every_reminder(app: App, clock: Clock) -> None:
    """A dispatcher killed after claiming: its claims expire and another one sends them."""
    people = [str(n) for n in range(20)]
    for person in people:
        await make_person(app, person, now=clock.now)
    clock.now = NINE_PM_BERLIN
    first_sender = FakeSender(clock)
    release = asyncio.Event()
    nine_started = asyncio.Event()
    started = 0

    async def hang_after_five(user: object) -> None:
        nonlocal started
        started += 1
        if started == 9:
            nine_started.set()
        if started > 5:
            await release.wait()  # the process dies while these are in flight

    first_sender.before_send = hang_after_five
    first = dispatcher(app, first_sender, clock, owner="first", concurrency=4, batch_size=50)
    task = asyncio.create_task(first.tick())
    await nine_started.wait()  # 5 sent, 4 in flight (the concurrency)
    task.cancel()  # the "SIGKILL": nothing after this point runs for the first dispatcher
    await asyncio.gather(task, return_exceptions=True)
    assert len(first_sender.sent) == 5

    second_sender = FakeSender(clock)
    second = dispatcher(app, second_sender, clock, owner="second")
    assert await second.tick() == 0  # the claims are still leased to the first one
    clock.now = NINE_PM_BERLIN + second.config.lease + timedelta(seconds=1)
    assert await second.tick() == 15
    got = [s.external_id for s in first_sender.sent + second_sender.sent]
    assert sorted(set(got)) == sorted(people)  # every due reminder went out
    assert len(got) - len(set(got)) <= 4  # duplicates at most the sends in flight
    assert {d.status for d in await deliveries(app)} == {"sent"}
    assert second.stats.recovered == 15


async def test_recovered_claim_that_is_too_old_is_skipped(app: App, clock: Clock) -> None:
    await make_person(app, "1", now=clock.now)
    clock.now = NINE_PM_BERLIN
    dead = dispatcher(app, FakeSender(clock), clock, owner="dead")
    assert len(await dead.claim()) == 1  # claimed, then the process died
    clock.now = NINE_PM_BERLIN + timedelta(hours=2)
    sender = FakeSender(clock)
    assert await dispatcher(app, sender, clock).tick() == 0
    assert sender.sent == []
    assert [(d.status, d.error) for d in await deliveries(app)] == [("skipped", "late")]


async def test_a_person_in_the_middle_of_something_is_not_interrupted(
    app: App, clock: Clock
) -> None:
    await make_person(app, "1", now=clock.now)
    clock.now = NINE_PM_BERLIN - timedelta(minutes=5)
    ref = UserRef("telegram", "1")
    await app.engine.handle(ref, Text("/reframe"))
    sender = FakeSender(clock)
    clock.now = NINE_PM_BERLIN
    await dispatcher(app, sender, clock).tick()
    assert sender.sent == []
    assert [(d.status, d.error) for d in await deliveries(app)] == [("skipped", "quiet")]


async def test_only_people_on_the_senders_channel(app: App, clock: Clock) -> None:
    await make_person(app, "local", channel="console", now=clock.now)
    sender = FakeSender(clock)
    clock.now = NINE_PM_BERLIN
    assert await dispatcher(app, sender, clock).tick() == 0
    assert await deliveries(app) == []


async def test_unanswered_reflection_is_replaced_quietly_next_day(app: App, clock: Clock) -> None:
    await make_person(app, "1", now=clock.now)
    sender = FakeSender(clock)
    worker = dispatcher(app, sender, clock)
    clock.now = NINE_PM_BERLIN
    await worker.tick()
    clock.now = NINE_PM_BERLIN + timedelta(days=1)
    await worker.tick()
    assert len(sender.sent) == 2
    texts = [s.texts for s in sender.sent]
    assert all(len(t) == 1 for t in texts)  # just the question: no "you missed yesterday"
    assert texts[0] != texts[1]  # a different phrasing on another evening


async def test_run_loop_starts_and_stops(app: App, clock: Clock) -> None:
    await make_person(app, "1", now=clock.now)
    clock.now = NINE_PM_BERLIN
    sender = FakeSender(clock)
    worker = dispatcher(app, sender, clock, poll_seconds=0.01)
    worker.start()
    for _ in range(200):
        if sender.sent:
            break
        await asyncio.sleep(0.01)
    await worker.stop()
    assert len(sender.sent) == 1


async def test_a_claim_taken_over_is_not_sent_by_its_old_owner(app: App, clock: Clock) -> None:
    """A dispatcher that stalled past its lease leaves the reminder to the new owner."""
    await make_person(app, "1", now=clock.now)
    clock.now = NINE_PM_BERLIN
    slow_sender, fast_sender = FakeSender(clock), FakeSender(clock)
    slow = dispatcher(app, slow_sender, clock, owner="slow")
    [claim] = await slow.claim()
    clock.now = NINE_PM_BERLIN + slow.config.lease + timedelta(seconds=1)
    fast = dispatcher(app, fast_sender, clock, owner="fast")
    assert await fast.tick() == 1
    await slow._deliver(claim)  # the slow one wakes up at last
    assert [s.external_id for s in fast_sender.sent] == ["1"]
    assert slow_sender.sent == []


async def test_sends_and_failures_reach_the_metrics(app: App, clock: Clock) -> None:
    """What the dispatcher records (sent with its lag; failed by kind) is what /metrics shows."""
    from bot import metrics
    from tests.test_metrics import samples

    metrics.reset()
    await make_person(app, "1", now=clock.now)
    await make_person(app, "2", now=clock.now)
    sender = FakeSender(clock, script={"2": [Blocked()]})
    clock.now = NINE_PM_BERLIN + timedelta(minutes=30)
    await dispatcher(app, sender, clock).tick()
    found = samples()
    assert found["kindbot_reminders_sent_total"] == 1
    assert found['kindbot_reminder_failures_total{kind="blocked"}'] == 1
    assert found["kindbot_reminder_lag_seconds_count"] == 1
    assert found["kindbot_reminder_lag_seconds_sum"] >= 30 * 60
