"""History, progress, export and forget, as a person uses them in Telegram."""

from __future__ import annotations

import json

from sqlalchemy import text
from sqlmodel import SQLModel

from bot.app import App
from bot.testing.harness import Harness, harness
from tests.telegram.helpers import entries, find_user

ZOE = 4242


async def reframe(h: Harness, thought: str, before: str, after: str) -> None:
    await h.say(ZOE, "/reframe")
    await h.say(ZOE, thought)
    await h.say(ZOE, "tired")
    await h.press(ZOE, before)
    await h.press(ZOE, "I've noticed it")
    await h.press(ZOE, "I see it")
    await h.press(ZOE, "Okay")
    await h.press(ZOE, "A close friend")
    await h.say(ZOE, "You are allowed to rest.")
    await h.say(ZOE, "I am allowed to rest, too.")
    await h.press(ZOE, after)
    if int(after) <= int(before):  # the optional last question
        await h.press(ZOE, "Skip this one")


async def test_two_reframes_seen_charted_exported_and_forgotten(app: App) -> None:
    async with harness(app) as h:
        await h.say(ZOE, "/start")
        await h.press(ZOE, "Yes, that's okay")
        await h.press(ZOE, "Skip")
        await h.press(ZOE, "Nothing right now")
        await reframe(h, "I am lazy-walrus-17 and worthless", "8", "4")
        await reframe(h, "I never finish anything (otter-93)", "7", "5")

        listing = await h.say(ZOE, "/history")
        labels = listing[-1].labels
        assert len([label for label in labels if "Reframe" in label]) == 2
        assert all("walrus" not in label for label in labels)  # buttons show no words
        opened = await h.press(ZOE, next(label for label in labels if "8 → 4" in label))
        full = opened[-1].text
        assert "lazy-walrus-17" in full
        assert "I am allowed to rest, too." in full
        await h.press(ZOE, "Done")

        chart = await h.say(ZOE, "/progress")
        photos = [c for c in chart if c.method == "sendPhoto"]
        assert len(photos) == 1
        ((_, png),) = photos[0].params["_files"].values()
        assert png.startswith(b"\x89PNG\r\n\x1a\n")

        exported = await h.say(ZOE, "/export")
        documents = [c for c in exported if c.method == "sendDocument"]
        assert len(documents) == 2

        asked = await h.say(ZOE, "/forget")
        assert asked[-1].labels == ["Yes, delete everything", "No, keep it"]
        done = await h.press(ZOE, "Yes, delete everything")
        assert "deleted" in done[-1].text
        assert await find_user(app, ZOE) is None
        async with app.db.engine.connect() as conn:
            for table in SQLModel.metadata.sorted_tables:
                if table.name in ("meta", "forgotten"):
                    continue
                count = (await conn.execute(text(f"SELECT count(*) FROM {table.name}"))).scalar()
                assert count == 0, table.name
            # only a salted hash stays for a day (late copies of old updates are turned away)
            kept = (await conn.execute(text("SELECT * FROM forgotten"))).all()
            assert len(kept) == 1
            assert str(ZOE) not in " ".join(str(v) for v in kept[0])

        again = await h.say(ZOE, "hello")
        assert "kindbot" in again[0].text  # a fresh start: onboarding again


async def test_export_document_holds_the_persons_entries(app: App) -> None:
    async with harness(app) as h:
        await h.say(ZOE, "/start")
        await h.press(ZOE, "Yes, that's okay")
        await h.press(ZOE, "Skip")
        await h.press(ZOE, "Nothing right now")
        await reframe(h, "Everyone is better than me", "9", "6")
        exported = await h.say(ZOE, "/export")
        documents = [c for c in exported if c.method == "sendDocument"]
        files = [file for c in documents for file in c.params["_files"].values()]
        by_name = {name: data for name, data in files}
        json_name = next(name for name in by_name if name.endswith(".json"))
        csv_name = next(name for name in by_name if name.endswith(".csv"))
        document = json.loads(by_name[json_name])
        assert "Everyone is better than me" in json.dumps(document)
        assert "Everyone is better than me" in by_name[csv_name].decode("utf-8")
        stored = await entries(app, ZOE)
        assert stored[0]["thought"] == "Everyone is better than me"
        photo = await h.say(ZOE, "/progress")
        [chart] = [c for c in photo if c.method == "sendPhoto"]  # one practice: its first chart
        assert "Your first practice" in str(chart.params.get("caption"))
