"""/history: entries newest first, paged with buttons; one entry opens in full."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.app import App, open_app
from bot.console import Console
from bot.engine.events import ChoiceMade, Message
from storage import repo
from tests.chat import Person
from tests.conftest import Clock, make_settings


async def seed(app: App, person: Person, count: int) -> list[int]:
    """`count` finished reframes, one a day from 1 Feb 2026 (the last is the newest)."""
    ids = []
    async with app.db.step() as unit:
        user, _ = await repo.get_or_create_user(
            unit.session, channel=person.ref.channel, external_id=person.ref.external_id
        )
        assert user.id is not None
        for n in range(count):
            when = datetime(2026, 2, 1, 8, 30, tzinfo=UTC) + timedelta(days=n)
            entry_id = await repo.create_entry(
                unit,
                user_id=user.id,
                kind="reframe",
                dialog="reframe",
                cipher=app.db.cipher,
                started_at=when,
            )
            answers = {"thought": f"thought number {n}", "rating_before": 7, "rating_after": 3}
            await repo.record_entry(
                unit,
                user_id=user.id,
                entry_id=entry_id,
                answers=answers,
                status="finished" if n % 4 else "stopped",
                cipher=app.db.cipher,
                finished_at=when if n % 4 else None,
            )
            ids.append(entry_id)
        await unit.commit()
    return ids


async def test_pages_of_five_newest_first(any_app: App) -> None:
    app = any_app
    alice = Person(app)
    await alice.consent()
    await seed(app, alice, 12)
    await alice.send("/history")
    assert "page 1" in alice.text
    assert alice.labels == [
        "12 Feb 2026 · Reframe · 7 → 3",
        "11 Feb 2026 · Reframe · 7 → 3",
        "10 Feb 2026 · Reframe · 7 → 3",
        "9 Feb 2026 · Reframe · 7 → 3 (unfinished)",
        "8 Feb 2026 · Reframe · 7 → 3",
        "Older ▶",
        "Done",
    ]
    await alice.press("Older ▶")
    assert "page 2" in alice.text
    assert alice.labels[0] == "7 Feb 2026 · Reframe · 7 → 3"
    assert alice.labels[-3:] == ["◀ Newer", "Older ▶", "Done"]
    await alice.press("Older ▶")
    assert "page 3" in alice.text
    assert alice.labels == [
        "2 Feb 2026 · Reframe · 7 → 3",
        "1 Feb 2026 · Reframe · 7 → 3 (unfinished)",
        "◀ Newer",
        "Done",
    ]
    await alice.press("◀ Newer")
    assert "page 2" in alice.text
    await alice.press("Done")
    assert "kept safe" in alice.text or "look back" in alice.text
    await alice.send("/history")
    assert "page 1" in alice.text  # a new visit starts at the newest


async def test_an_entry_opens_in_full(any_app: App) -> None:
    app = any_app
    alice = Person(app)
    await alice.consent()
    await alice.reframe(
        "I always let my team down",
        feeling="guilty",
        before=9,
        friend="One hard week does not make you a bad teammate.",
        kind="I care about my team, and I am allowed to have a hard week.",
        after=4,
    )
    await alice.send("/history")
    assert alice.labels == ["2 Mar 2026 · Reframe · 9 → 4", "Done"]
    await alice.press("2 Mar 2026 · Reframe · 9 → 4")
    shown = alice.text
    for expected in (
        "Reframe · 2 March 2026, 09:00 UTC",  # DEFAULT_TIMEZONE: UTC
        "The thought: I always let my team down",
        "The feeling: guilty",
        "How strong it felt before: 9",
        "What you'd say to them: One hard week does not make you a bad teammate.",
        "Your kind words: I care about my team, and I am allowed to have a hard week.",
        "How strong it felt after: 4",
    ):
        assert expected in shown, shown
    assert shown.index("The thought") < shown.index("Your kind words")
    assert alice.labels == ["Back to the list", "Done"]
    await alice.press("Back to the list")
    assert alice.labels == ["2 Mar 2026 · Reframe · 9 → 4", "Done"]


async def test_empty_history_is_kind(app: App) -> None:
    alice = Person(app)
    await alice.consent()
    await alice.send("/history")
    assert "nothing here yet" in alice.text
    assert alice.labels == ["Done"]


async def test_someone_elses_entry_cannot_be_opened(any_app: App) -> None:
    app = any_app
    alice, bob = Person(app, "alice"), Person(app, "bob")
    await bob.consent()
    bob_ids = await seed(app, bob, 1)
    await alice.consent()
    await alice.send("/history")
    assert alice.offer is not None
    reply = await app.engine.handle(alice.ref, ChoiceMade(f"open_{bob_ids[0]}", alice.offer.step))
    texts = [m.text for m in reply if isinstance(m, Message)]
    assert not any("thought number" in t for t in texts), texts


async def test_history_during_a_reframe_returns_to_it(app: App) -> None:
    alice = Person(app)
    await alice.consent()
    await alice.send("/reframe")
    await alice.send("Nobody would miss me at work")
    await alice.send("/history")
    assert "newest first" in alice.text
    await alice.press("Done")
    assert "Nobody would miss me at work" in alice.text  # the feeling question again


async def test_terminal_shows_numbered_entries(app: App, tmp_path: object) -> None:
    alice = Person(app, "local")
    await alice.consent()
    await seed(app, alice, 2)
    out = io.StringIO()
    console = Console(app.engine, "local", out, interactive=False)
    await console.send("/history")
    assert "1. 2 Feb 2026 · Reframe · 7 → 3" in out.getvalue()
    await console.send("2")
    assert "The thought: thought number 0" in out.getvalue()


async def test_opening_another_dialog_closes_the_history(app: App) -> None:
    alice = Person(app)
    await alice.consent()
    await alice.send("/history")
    await alice.reframe("I talk too much in meetings")
    assert "newest first" not in alice.text  # not dropped back into an old list
    await alice.send("/history")
    assert alice.labels[0].startswith("2 Mar 2026 · Reframe")


async def test_dates_and_times_are_on_the_persons_clock(app: App, clock: Clock) -> None:
    """Late on 1 March in UTC is the morning of 2 March in Tokyo: the list and the entry say
    so, with the zone named; a stopped entry reads "unfinished" like an open one."""
    alice = Person(app)
    await alice.consent()
    await alice.send("/reminders")
    await alice.press("My timezone")
    await alice.send("Tokyo")
    assert "Asia/Tokyo" in alice.text or "Tokyo" in alice.text
    await alice.press("Done")
    clock.now = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)
    await alice.reframe("I never finish anything", before=8, after=5)
    await alice.send("/reframe")
    await alice.send("I am too slow")
    await alice.send("/cancel")
    await alice.send("/history")
    assert alice.labels == [
        "2 Mar 2026 · Reframe (unfinished)",
        "2 Mar 2026 · Reframe · 8 → 5",
        "Done",
    ]
    await alice.press("2 Mar 2026 · Reframe · 8 → 5")
    assert "Reframe · 2 March 2026, 08:30 JST" in alice.text
    assert "UTC" not in alice.text


async def test_without_a_chosen_zone_times_use_the_default(tmp_path: Path, clock: Clock) -> None:
    settings = make_settings(tmp_path, default_timezone="America/New_York")
    async with open_app(settings, clock=clock) as app:
        alice = Person(app)
        await alice.consent()
        await alice.reframe("I always say the wrong thing")
        await alice.send("/history")
        assert alice.labels[0].startswith("2 Mar 2026 · Reframe")
        await alice.press(alice.labels[0])
        assert "2 March 2026, 04:00 EST" in alice.text  # 09:00 UTC
