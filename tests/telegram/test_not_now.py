"""After "Not now" in Telegram: the offer's buttons work, and a reframe run without storage
leaves nothing of what the person wrote anywhere in the database (entries, conversation,
outbox, safety events)."""

from __future__ import annotations

from sqlalchemy import text

from bot.app import App
from bot.testing.harness import harness
from tests.telegram.helpers import entries, position

BEA = 501
THOUGHT = "I ruin everything I touch"


async def test_an_unrecorded_reframe_leaves_nothing_behind(app: App) -> None:
    async with harness(app) as h:
        await h.say(BEA, "hello")
        await h.press(BEA, "Not now")
        offer = h.last_offer(BEA)
        assert "/checkin" in offer.text and "/sos" in offer.text
        assert offer.labels[0] == "Look at a thought (nothing saved)"
        await h.press(BEA, "Look at a thought (nothing saved)")
        # the note, the first-time note, the question
        assert "Nothing from this will be saved" in h.api.texts(BEA)[-3]
        for said in (THOUGHT, "small", "8"):
            await h.say(BEA, said)
        await h.press(BEA, "I've noticed it")
        await h.press(BEA, "I see it")
        await h.press(BEA, "Okay")
        await h.press(BEA, "A close friend")
        for said in ("You're allowed to make mistakes", "I'm allowed to make mistakes", "6"):
            await h.say(BEA, said)
        await h.press(BEA, "Skip this one")  # the optional last question
        assert THOUGHT in h.api.texts(BEA)[-1]  # the close shows their words back
        assert await position(app, BEA) == "none"
        assert await entries(app, BEA) == []
        async with app.db.engine.connect() as conn:
            for table in ("entries", "outbox", "safety_events", "safety_plans"):
                rows = (await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar()
                assert rows == 0, table
            consented = (await conn.execute(text("SELECT consented_at FROM users"))).scalar()
            assert consented is None

        # a later message: one short line, not the welcome again
        h.api.clear()
        await h.say(BEA, "thanks")
        sent = h.api.texts(BEA)
        assert len(sent) == 1 and "/reframe" in sent[0] and "I'm kindbot" not in sent[0]
