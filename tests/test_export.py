"""/export and `kindbot export`: everything stored about a person comes back out.

The step says a word and answers with a `Later`; the files are made by its producer
afterwards (`engine.produce`, as the Telegram and terminal adapters do)."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text as sql
from sqlmodel import SQLModel

from bot import export
from bot.app import App, open_app
from bot.cli import main
from bot.console import Console
from bot.engine.events import Document, Later, Message, Output, UserRef
from bot.engine.outbox import decode, encode
from storage import repo
from storage.personal import dump_person, exported_tables
from tests.chat import Person
from tests.conftest import Clock, make_settings

ALICE = {
    "thought": "My sourdough starter died, so I am hopeless at caring for anything",
    "feeling": "deflated",
    "friend": "A starter is fussy; you kept a whole houseplant alive for years.",
    "kind": "I can be new at baking and still be a caring person.",
}


async def alice_and_bob(app: App) -> tuple[Person, Person]:
    alice, bob = Person(app, "alice"), Person(app, "bob")
    await alice.consent()
    await alice.reframe(
        ALICE["thought"], feeling=ALICE["feeling"], friend=ALICE["friend"], kind=ALICE["kind"]
    )
    await alice.send("/reframe")
    await alice.send('=SUM(A1) I am a spreadsheet disaster, comma, "quotes"')
    await alice.send("stop")
    await bob.consent()
    await bob.reframe("Bob thinks he is useless at his new job")
    return alice, bob


async def made(person: Person) -> list[Output]:
    """The person's last reply as an adapter shows it: every `Later` made."""
    return await person.app.engine.produce(person.ref, person.reply)


def parse_csv(data: bytes) -> list[dict[str, str]]:
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    return [{k: v[1:] if v.startswith("'") else v for k, v in row.items()} for row in rows]


async def stored(app: App, external_id: str) -> tuple[int, list[dict[str, Any]], dict[str, Any]]:
    async with app.db.session() as session:
        user, _ = await repo.get_or_create_user(session, channel="console", external_id=external_id)
        assert user.id is not None
        entries = await repo.list_entries(session, user_id=user.id)
        answers = [
            {"id": e.id, "status": e.status, **repo.entry_answers(e, cipher=app.db.cipher)}
            for e in entries
        ]
        _, state = await repo.load_conversation(
            session, user_id=user.id, cipher=app.db.cipher, lock=False
        )
        await session.commit()
        return user.id, answers, state


async def test_export_round_trip(any_app: App) -> None:
    alice, _ = await alice_and_bob(any_app)
    user_id, entries, state = await stored(any_app, "alice")
    await alice.send("/export")
    assert "not encrypted" in alice.text
    json_doc, csv_doc = [o for o in await made(alice) if isinstance(o, Document)]
    assert isinstance(json_doc, Document)
    assert isinstance(csv_doc, Document)
    assert json_doc.filename == "kindbot-export-2026-03-02.json"
    assert json_doc.mime_type == "application/json"
    assert csv_doc.filename.endswith(".csv")
    assert csv_doc.mime_type == "text/csv"

    document = json.loads(json_doc.data)
    assert document["format"] == "kindbot-export"
    assert document["user"]["id"] == user_id
    assert document["user"]["external_id"] == "alice"
    assert document["user"]["consented_at"]
    # Every table that can hold something about a person is there, even when empty.
    assert set(document["tables"]) == {t.name for t, _ in exported_tables()}
    assert document["tables"]["conversations"][0]["state"] == state
    exported = {e["id"]: e for e in document["tables"]["entries"]}
    assert len(exported) == len(entries) == 2
    for entry in entries:
        out = exported[entry["id"]]
        assert out["status"] == entry["status"]
        assert {**out["answers"], **out["scores"]} == {
            k: v for k, v in entry.items() if k not in ("id", "status")
        }
    text = json_doc.data.decode("utf-8")
    for sentence in ALICE.values():
        assert sentence in text
    assert "Bob thinks he is useless" not in text

    rows = parse_csv(csv_doc.data)
    assert [int(r["Entry"]) for r in rows] == sorted(exported)  # oldest first
    labels = document["about"]["answer_labels"]["reframe"]
    words = document["about"]["answer_values"]["reframe"]  # a pressed button's words
    for row in rows:
        out = exported[int(row["Entry"])]
        merged = {**out["answers"], **out["scores"]}
        for key, value in merged.items():
            assert row[labels[key]] == words.get(key, {}).get(str(value), str(value))
    assert list(rows[0])[:7] == [
        "Entry", "Practice", "Status", "Started (UTC)", "Finished (UTC)", "The thought",
        "The feeling",
    ]  # fmt: skip
    # one word for an entry that is not finished, times as a spreadsheet reads them
    assert [r["Status"] for r in rows] == ["finished", "unfinished"]
    assert rows[0]["Practice"] == "Reframe"
    assert rows[0]["Started (UTC)"] == "2026-03-02 09:00"
    assert rows[1]["Finished (UTC)"] == ""
    raw_csv = csv_doc.data.decode("utf-8-sig")
    assert "'=SUM(A1)" in raw_csv  # no formula runs when the file is opened


async def test_the_step_holds_who_and_when_not_the_files(app: App) -> None:
    """What the step returns is plain JSON (it waits in the outbox until sent): no files."""
    alice, _ = await alice_and_bob(app)
    user_id, _, _ = await stored(app, "alice")
    reply = await alice.send("/export")
    assert not any(isinstance(o, Document) for o in reply)
    [later] = [o for o in reply if isinstance(o, Later)]
    assert later.kind == export.EXPORT
    assert later.data["user_id"] == user_id
    assert later.data["now"] == "2026-03-02T09:00:00+00:00"
    assert later.data["captions"] == {
        "json": "Everything, as JSON",
        "csv": "Your entries, as a spreadsheet (CSV)",
    }
    assert decode(encode(reply)) == reply  # survives the outbox as it is
    assert ALICE["thought"] not in json.dumps(later.data)


async def test_the_producer_makes_what_the_step_used_to(app: App) -> None:
    """Same files and captions as exporting in one go, as /export did in its step."""
    alice, _ = await alice_and_bob(app)
    user_id, _, _ = await stored(app, "alice")
    await alice.send("/export")
    files = [o for o in await made(alice) if isinstance(o, Document)]
    now = app.engine.clock()
    async with app.db.session() as session:
        person = await dump_person(session, user_id=user_id, cipher=app.db.cipher)
    document = export.export_document(person, now=now, about=export.about(app.catalog, "en"))
    stem = export.file_stem(now)
    assert files == [
        Document(
            export.to_json(document),
            f"{stem}.json",
            caption="Everything, as JSON",
            mime_type="application/json",
        ),
        Document(
            export.to_csv(document, app.catalog),  # UTC: alice chose no zone
            f"{stem}.csv",
            caption="Your entries, as a spreadsheet (CSV)",
            mime_type="text/csv",
        ),
    ]


async def test_nothing_is_sent_for_someone_forgotten_meanwhile(app: App) -> None:
    alice, _ = await alice_and_bob(app)
    reply = await alice.send("/export")
    await alice.send("/forget")
    await alice.press("Yes, delete everything")
    shown = await app.engine.produce(alice.ref, reply)
    assert not any(isinstance(o, Document | Later) for o in shown)
    assert [o.text for o in shown if isinstance(o, Message)] == [
        o.text for o in reply if isinstance(o, Message)
    ]  # the rest of the reply, and no apology


async def test_an_export_goes_only_to_the_person_it_describes(app: App) -> None:
    """A `Later` naming someone else's row (a reused id) makes nothing for this person."""
    alice, _ = await alice_and_bob(app)
    reply = await alice.send("/export")
    [later] = [o for o in reply if isinstance(o, Later)]
    assert await app.engine.produce(UserRef("console", "bob"), [later]) == []
    assert await app.engine.produce(UserRef("telegram", "alice"), [later]) == []


async def test_the_export_is_made_while_a_step_holds_the_writer(app: App) -> None:
    """The producer reads in a session of its own: it never waits for a step to finish (a
    step holding this process's writer lock and SQLite's, mid-write)."""
    alice, _ = await alice_and_bob(app)
    reply = await alice.send("/export")
    async with app.db.step() as unit:
        await unit.session.execute(sql("UPDATE meta SET value = value"))
        made_now = await asyncio.wait_for(app.engine.produce(alice.ref, reply), timeout=60)
    assert len([o for o in made_now if isinstance(o, Document)]) == 2


async def test_terminal_saves_the_export(app: App, tmp_path: Path) -> None:
    await alice_and_bob(app)
    out = io.StringIO()
    console = Console(app.engine, "alice", out, interactive=False, files=tmp_path / "files")
    await console.send("/export")
    assert stat.S_IMODE((tmp_path / "files").stat().st_mode) == 0o700
    for name in ("kindbot-export-2026-03-02.json", "kindbot-export-2026-03-02.csv"):
        saved = tmp_path / "files" / name
        assert stat.S_IMODE(saved.stat().st_mode) == 0o600
        assert f"[{saved}]" in out.getvalue()
    saved_json = (tmp_path / "files" / "kindbot-export-2026-03-02.json").read_text("utf-8")
    assert ALICE["thought"] in saved_json
    assert "Everything, as JSON" in out.getvalue()


def run_cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, key: str, *argv: str) -> int:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ENCRYPTION_KEY", key)
    return main(list(argv))


async def _fill(settings: Any, clock: Clock) -> None:
    async with open_app(settings, clock=clock) as app:
        await alice_and_bob(app)


def test_cli_export_writes_the_same(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    clock: Clock,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import asyncio

    settings = make_settings(tmp_path)
    assert settings.encryption_key
    asyncio.run(_fill(settings, clock))
    out = tmp_path / "alice.json"
    assert run_cli(monkeypatch, tmp_path, settings.encryption_key, "export", "--user", "alice",
                   "--out", str(out)) == 0  # fmt: skip
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    document = json.loads(out.read_text(encoding="utf-8"))
    assert document["user"]["external_id"] == "alice"
    texts = json.dumps(document, ensure_ascii=False)
    assert all(sentence in texts for sentence in ALICE.values())
    assert len(document["tables"]["entries"]) == 2

    capsys.readouterr()
    assert run_cli(monkeypatch, tmp_path, settings.encryption_key, "export", "--user", "alice",
                   "--format", "csv") == 0  # fmt: skip
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out.lstrip("\ufeff"))))
    assert {r["The thought"] for r in rows} >= {ALICE["thought"]}
    assert "about" in document

    assert (
        run_cli(monkeypatch, tmp_path, settings.encryption_key, "export", "--user", "nobody") == 1
    )
    assert "no user 'nobody'" in capsys.readouterr().err


async def test_the_json_says_what_every_field_means(app: App) -> None:
    """Every field an export can hold is described in its `about` part, and every stored
    answer name has its words: a new column or answer without a description fails here."""
    alice, _ = await alice_and_bob(app)
    await alice.send("/export")
    json_doc = next(o for o in await made(alice) if isinstance(o, Document))
    document = json.loads(json_doc.data)
    fields = document["about"]["fields"]
    assert document["about"]["times"].startswith("Every time in this file is in UTC")
    expected = {"format", "version", "exported_at"}
    expected |= {f"user.{c.name}" for c in SQLModel.metadata.tables["users"].columns}
    for table, _ in exported_tables():
        expected |= {f"{table.name}.{c.name.removesuffix('_enc')}" for c in table.columns}
    assert expected <= set(fields), expected - set(fields)
    assert all(fields[name].strip() for name in expected)
    assert "unfinished" in fields["entries.status"]
    labels = document["about"]["answer_labels"]
    for entry in document["tables"]["entries"]:
        for name in [*entry["answers"], *entry["scores"]]:
            assert labels[entry["dialog"]][name], name
    assert labels["reframe"]["kind_words"] == "Your kind words"
    assert document["about"]["answer_values"]["checkin"]["grounding"]["breathe"] == "Slow breathing"


async def test_the_spreadsheet_is_on_the_persons_clock_in_words(app: App, clock: Clock) -> None:
    """A person in New York: their times in New York, the zone in the header, their date in
    the file's name; a check-in's chosen answers in words, not codes."""
    clock.now = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)  # 22:00 on 1 March in New York
    alice = Person(app, "alice")
    await alice.consent()
    await alice.send("/reminders")
    await alice.press("My timezone")
    await alice.send("New York")
    await alice.press("Done")
    await alice.send("/checkin")
    await alice.send("2")
    await alice.press(alice.labels[-1])  # "Not now": a finished check-in
    await alice.send("/export")
    csv_doc = [o for o in await made(alice) if isinstance(o, Document)][1]
    [row] = parse_csv(csv_doc.data)
    assert csv_doc.filename == "kindbot-export-2026-03-01.csv"
    assert row["Started (America/New_York)"] == "2026-03-01 22:00"
    assert row["Finished (America/New_York)"] == "2026-03-01 22:00"
    assert row["Practice"] == "Check-in"
    assert row["Status"] == "finished"
    assert row["How it felt"] == "Fairly steady"  # not "low"
    assert row["What came next"] == "Not now"  # not "rest"
