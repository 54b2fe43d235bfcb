"""/summary in Telegram: the period buttons, then two documents sent to the person."""

from __future__ import annotations

import io

import pypdf

from bot.app import App
from bot.testing.harness import harness

ZOE = 5151


async def test_the_summary_arrives_as_two_documents(app: App) -> None:
    async with harness(app) as h:
        await h.say(ZOE, "/start")
        await h.press(ZOE, "Yes, that's okay")
        await h.press(ZOE, "Skip")
        await h.press(ZOE, "Nothing right now")
        await h.say(ZOE, "/journal")
        await h.press(ZOE, "Just let me write")
        await h.say(ZOE, "The bus was late and I was annoyed with myself (lynx-12)")
        await h.press(ZOE, "Skip this one")

        asked = await h.say(ZOE, "/summary")
        assert asked[-1].labels == ["The last 7 days", "The last 30 days", "Everything", "Not now"]
        sent = await h.press(ZOE, "The last 7 days")
        documents = [c for c in sent if c.method == "sendDocument"]
        assert len(documents) == 2
        assert all(c.params["chat_id"] == ZOE for c in documents)
        files = dict(file for c in documents for file in c.params["_files"].values())
        md = next(data for name, data in files.items() if name.endswith(".md")).decode("utf-8")
        pdf = next(data for name, data in files.items() if name.endswith(".pdf"))
        assert "> The bus was late and I was annoyed with myself (lynx-12)" in md
        assert "- Journal entry: 1" in md
        assert pdf.startswith(b"%PDF-")
        reader = pypdf.PdfReader(io.BytesIO(pdf))
        assert len(reader.pages) >= 1
        assert "lynx-12" in reader.pages[0].extract_text()
