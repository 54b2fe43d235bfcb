"""The practice library's entries in /progress and /export (its /history and /forget are
shown by the transcripts `tests/transcripts/practices_*.yaml`).

Every practice is kept as an entry of kind `practice`: its ratings before and after are
drawn in one panel of the chart (not a panel per practice), and the export names each
practice and its answers in words."""

from __future__ import annotations

import csv
import io
import json

from bot import progress
from bot.app import App
from bot.engine.events import Document, Image, Later
from tests.chat import Person
from tests.conftest import Clock


async def two_practices(app: App, clock: Clock) -> Person:
    me = Person(app, "practiser")
    await me.consent()
    await me.send("/practices")
    await me.press("A compassionate letter to myself")
    await me.send("7")
    await me.send("I forgot my friend's birthday")
    await me.send(
        "Dear me, you forgot because you were stretched thin, not because you don't care."
    )
    await me.send("4")
    clock.advance(days=1)
    await me.send("/practices")
    await me.press("Affectionate breathing")
    await me.send("6")
    await me.press("That's enough for now")
    await me.send("5")
    return me


async def test_practices_share_one_panel_of_the_chart(app: App, clock: Clock) -> None:
    me = await two_practices(app, clock)
    await me.send("/progress")
    [later] = [o for o in me.reply if isinstance(o, Later)]
    assert later.data["rated"]["letter"] == [["rating_before", "rating_after"]]
    assert later.data["texts"]["titles"]["practice"].startswith("Practices")
    [image] = [o for o in await app.engine.produce(me.ref, me.reply) if isinstance(o, Image)]
    assert "You've practised 2 times" in image.caption
    assert "how heavy things felt went from 6.5 before to 4.5 after" in image.caption
    assert "birthday" not in json.dumps(later.data)  # the step carries no words of theirs


def test_a_practice_entry_is_a_point_in_the_practice_panel(app: App) -> None:
    from datetime import UTC, datetime

    from storage.models import Entry

    def entry(dialog: str, before: int, after: int) -> Entry:
        return Entry(
            user_id=1,
            kind="practice",
            dialog=dialog,
            status="finished",
            answers_enc="",
            scores={"rating_before": before, "rating_after": after},
            started_at=datetime(2026, 3, 2, tzinfo=UTC),
        )

    points = progress.rating_points(
        [entry("letter", 7, 4), entry("soften_soothe_allow", 5, 5)], app.catalog, "en"
    )
    assert [(p.dialog, p.before, p.after) for p in points] == [
        ("practice", 7, 4),
        ("practice", 5, 5),
    ]


async def test_the_export_names_each_practice_and_its_answers(app: App, clock: Clock) -> None:
    me = await two_practices(app, clock)
    await me.send("/export")
    json_doc, csv_doc = [
        o for o in await app.engine.produce(me.ref, me.reply) if isinstance(o, Document)
    ]
    document = json.loads(json_doc.data)
    entries = document["tables"]["entries"]
    assert sorted((e["kind"], e["dialog"]) for e in entries) == [
        ("practice", "affectionate_breathing"),
        ("practice", "letter"),
    ]
    letter = next(e for e in entries if e["dialog"] == "letter")
    assert letter["answers"]["letter"].startswith("Dear me, you forgot")
    assert letter["scores"] == {"rating_before": 7, "rating_after": 4}
    assert document["about"]["answer_labels"]["letter"]["letter"] == "Your letter"
    rows = list(csv.DictReader(io.StringIO(csv_doc.data.decode("utf-8-sig"))))
    assert [r["Practice"] for r in rows] == ["Compassionate letter", "Affectionate breathing"]
    assert rows[0]["Your letter"].startswith("Dear me, you forgot")
    assert rows[1]["How heavy it felt before (0–10)"] == "6"


def test_help_and_the_telegram_command_menu_list_the_library(app: App) -> None:
    from bot.telegram.application import bot_commands

    menu = {c.command: c.description for c in bot_commands(app.catalog, "en")}
    assert menu["practices"] == "Pick a short self-compassion practice"
    assert "/practices — " in app.catalog.locale("en").message("help")
