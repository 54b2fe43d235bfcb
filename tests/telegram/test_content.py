"""The reframe's new buttons as a person sees them in Telegram: feeling words beside free
text, the figures, the "feels fake" route and the aftercare offer (issue 12, items 13-16)."""

from __future__ import annotations

from bot.app import App
from bot.testing.harness import harness
from tests.telegram.helpers import entries, position

ZED = 303


async def test_ready_answers_and_the_heavier_ending_in_telegram(app: App) -> None:
    async with harness(app) as h:
        await h.say(ZED, "/start")
        await h.press(ZED, "Yes, that's okay")
        await h.say(ZED, "/country GB")
        await h.say(ZED, "/reframe")
        feeling = await h.say(ZED, "Why can't I <i>ever</i> get it right?")
        assert "“Why can't I &lt;i&gt;ever&lt;/i&gt; get it right?”" in feeling[-1].text
        assert feeling[-1].labels == [
            "Ashamed",
            "Sad",
            "Anxious",
            "Angry with myself",
            "Alone",
            "Numb",
        ]
        rating = await h.press(ZED, "Angry with myself")
        assert rating[1].method == "editMessageText"
        assert rating[1].text.endswith("→ <b>Angry with myself</b>")
        assert "reply_markup" not in rating[1].params  # the feeling words are gone
        assert rating[-1].labels[:3] == ["0", "1", "2"]
        await h.press(ZED, "7")
        await h.press(ZED, "I've noticed it")
        await h.press(ZED, "I see it")
        figures = await h.press(ZED, "Okay")
        assert "A pet" in figures[-1].labels
        await h.press(ZED, "A pet")
        kind = await h.say(ZED, "I'd hold him & tell him he's safe")
        assert "“I'd hold him &amp; tell him he's safe”" in kind[-1].text
        assert kind[-1].labels == ["This feels fake to me"]
        await h.press(ZED, "This feels fake to me")
        rated = await h.press(ZED, "This is hard right now.")
        assert rated[-1].labels[:3] == ["0", "1", "2"]
        ending = await h.press(ZED, "9")
        texts = [c.text for c in ending if c.method == "sendMessage"]
        assert "7 → 9" in texts[0]
        assert "Samaritans" in texts[1]
        assert ending[-1].labels == [
            "Slow breathing",
            "Grounding with my senses",
            "People I can talk to",
            "I'll rest now",
        ]
        assert await position(app, ZED) == "aftercare.offer"
        (entry,) = await entries(app, ZED)
        assert entry["status"] == "finished"
        assert entry["feeling"] == "Angry with myself"
        assert entry["kind_words"] == "This is hard right now."
        rest = await h.press(ZED, "I'll rest now")
        assert rest[1].text.endswith("→ <b>I'll rest now</b>")
        assert await position(app, ZED) == "none"
