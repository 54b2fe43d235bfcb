"""/summary: a readable document of a chosen period, as Markdown and PDF, for the person
to pass on themselves.

The files are made as an adapter makes them: the step answers with a `Later`, and
`engine.produce` runs the real producer in the offload worker process."""

from __future__ import annotations

import io
import logging
from datetime import UTC, datetime

import pypdf
import pytest

from bot import summary
from bot.app import App
from bot.engine.events import Document, Later, Message, Output
from tests.chat import Person
from tests.conftest import Clock

THOUGHT = "I am bad at keeping in touch with friends (heron-41)"
KIND = "I am tired, and I still show up for people I love."
HAPPENED = "Я забыла позвонить маме 😔 and then I lied about it (kestrel-7)"
JUDGED = "That I'm a coward who can't face anything"
BOB = "Bob's private worry about his brother (badger-22)"


async def journal(person: Person, happened: str, judged: str | None = None) -> None:
    await person.send("/journal")
    await person.press("Walk me through it")
    await person.send(happened)
    if judged is None:
        await person.press("Skip this one")
    else:
        await person.send(judged)
    await person.press("Skip this one")  # what I'd say to a friend
    await person.send("It was one hard day, not who I am.")
    assert "/history" in person.text


async def checkin(person: Person, before: int, after: int) -> None:
    """A middle check-in: the self-compassion break, the rating after it, no reframe."""
    await person.send("/checkin")
    await person.send(str(before))
    await person.press("I've taken a moment")
    await person.send(str(after))
    await person.press("Not now")


async def ask(person: Person, period: str) -> list[Output]:
    await person.send("/summary")
    assert person.labels == ["The last 7 days", "The last 30 days", "Everything", "Not now"]
    await person.press(period)
    return await person.app.engine.produce(person.ref, person.reply)


def files(outputs: list[Output]) -> tuple[str, bytes]:
    md, pdf = [o for o in outputs if isinstance(o, Document)]
    assert md.filename.endswith(".md") and md.mime_type == "text/markdown"
    assert pdf.filename.endswith(".pdf") and pdf.mime_type == "application/pdf"
    return md.data.decode("utf-8"), pdf.data


def pdf_text(data: bytes) -> tuple[int, str]:
    assert data.startswith(b"%PDF-")
    reader = pypdf.PdfReader(io.BytesIO(data))
    return len(reader.pages), "\n".join(page.extract_text() for page in reader.pages)


async def test_the_summary_holds_the_persons_words_and_nobody_elses(app: App) -> None:
    alice, bob = Person(app, "alice"), Person(app, "bob")
    await alice.consent()
    await alice.reframe(THOUGHT, before=8, kind=KIND, after=5)
    await alice.reframe("I am slow", before=6, after=5)
    await journal(alice, HAPPENED, JUDGED)
    await checkin(alice, 6, 4)
    await bob.consent()
    await bob.reframe(BOB)
    await journal(bob, BOB)

    outputs = await ask(alice, "Everything")
    said = [o.text for o in outputs if isinstance(o, Message)]
    assert len(said) == 1 and "I don't send them anywhere" in said[0]
    md, pdf = files(outputs)
    # a short header: written by the person with an automated self-help tool, not clinical
    head = md.split("## ")[0]
    assert head.startswith("# A summary of my self-compassion practice")
    assert "automated self-help tool" in head and "not a clinical record" in head
    assert "Period: everything, 2 March 2026 to 2 March 2026." in head
    # counts per kind, averages, then the entries in the person's (decrypted) words
    assert "- Reframe: 2\n- Check-in: 1\n- Journal entry: 1" in md
    assert "On average, 7 before and 5 after (2 with both ratings)." in md
    assert "On average, 6 before and 4 after (1 with both ratings)." in md
    assert f"**The thought:**\n\n> {THOUGHT}" in md
    assert f"**Your kind words:**\n\n> {KIND}" in md
    assert "Before → after: 8 → 5" in md
    assert f"> {HAPPENED}" in md and f"> {JUDGED}" in md
    assert md.index("## Reframe") < md.index("## Check-in") < md.index("## Journal entry")
    assert "badger" not in md and "badger" not in pdf_text(pdf)[1]

    pages, text = pdf_text(pdf)
    assert pages >= 1
    assert "not a clinical record" in text
    assert "heron-41" in text and "Я забыла позвонить маме" in text and "kestrel-7" in text


async def test_the_period_is_chosen(app: App, clock: Clock) -> None:
    alice = Person(app, "alice")
    await alice.consent()
    await journal(alice, "Old day (otter-1)")
    clock.advance(days=20)
    await alice.reframe("I never finish my work on time (otter-2)")
    clock.advance(days=8)
    await journal(alice, "Recent day (otter-3)")

    week, _ = files(await ask(alice, "The last 7 days"))
    assert "otter-3" in week and "otter-2" not in week and "otter-1" not in week
    assert "Period: the last 7 days, 23 March 2026 to 30 March 2026." in week
    month, _ = files(await ask(alice, "The last 30 days"))
    assert all(f"otter-{n}" in month for n in (1, 2, 3))
    clock.advance(days=8)
    empty = await ask(alice, "The last 7 days")
    assert not [o for o in empty if isinstance(o, Document)]
    assert next(o.text for o in empty if isinstance(o, Message)).startswith(("There's", "That"))


async def test_not_now_makes_nothing(app: App) -> None:
    alice = Person(app, "alice")
    await alice.consent()
    await alice.send("/summary")
    await alice.send("4")  # a number never picks "Not now"
    assert "number alone" in alice.text
    reply = await alice.press("Not now")
    assert not [o for o in reply if isinstance(o, Later)]
    assert "/summary" in alice.text


def test_characters_the_font_lacks_are_replaced_and_never_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    blocks = [
        summary.Block("title", "Summary"),
        summary.Block("item", "中文 pangolin-5 Ёж ❤️ 👍🏽 done", "What I wrote"),
    ]
    with caplog.at_level(logging.DEBUG):
        data = summary.to_pdf(blocks, title="Summary")
    pages, text = pdf_text(data)
    assert pages == 1
    assert "□□ pangolin-5 Ёж" in text
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "中" not in logged and "pangolin" not in logged


def test_a_persons_markup_shows_as_written() -> None:
    blocks = [summary.Block("item", "# not a heading\n<b>bold?</b> *stars*\n1. x", "Words")]
    md = summary.to_markdown(blocks)
    assert md == "**Words:**\n\n> \\# not a heading\n> \\<b\\>bold?\\</b\\> \\*stars\\*\n> 1\\. x\n"


def test_in_period_counts_back_from_now() -> None:
    from storage.models import Entry

    now = datetime(2026, 3, 10, 12, tzinfo=UTC)
    entries = [
        Entry(id=n, user_id=1, kind="journal", dialog="journal", answers_enc="", started_at=at)
        for n, at in enumerate(
            [datetime(2026, 3, 3, 11), datetime(2026, 3, 3, 13), datetime(2026, 3, 10, 11)]
        )
    ]
    assert [e.id for e in summary.in_period(entries, now, 7)] == [1, 2]
    assert [e.id for e in summary.in_period(entries, now, None)] == [0, 1, 2]
