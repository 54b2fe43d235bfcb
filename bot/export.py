"""`/export` and `kindbot export`: everything stored about a person, as JSON and CSV.

The JSON holds every row about them in every table (see storage/personal.py), with
encrypted columns decrypted; it is the faithful copy. The CSV is a spreadsheet-friendly
view of their entries, one row per entry and one column per answer.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from typing import Any

from bot.engine.catalog import Catalog
from bot.engine.events import Document, Later, Output
from bot.engine.turn import Turn
from storage.personal import dump_person, is_person
from storage.source import DatabaseSource

FORMAT_VERSION = 1
EXPORT = "export"  # the `Later` kind, and its producer's name in Engine.producers
ENTRY_COLUMNS = ("id", "kind", "dialog", "status", "started_at", "finished_at")
# Cells a spreadsheet would run as a formula get a leading apostrophe (OWASP advice).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def export_document(person: dict[str, Any], *, now: datetime) -> dict[str, Any]:
    """The whole export document: a small header, then the users row and every table's rows
    as `storage.personal.dump_person` read them."""
    header = {"format": "kindbot-export", "version": FORMAT_VERSION, "exported_at": now.isoformat()}
    return header | person


def to_json(document: dict[str, Any]) -> bytes:
    return json.dumps(document, ensure_ascii=False, indent=2, sort_keys=False).encode("utf-8")


def entry_rows(document: dict[str, Any]) -> list[dict[str, Any]]:
    """Each entry with its text answers and its ratings merged, oldest first."""
    rows = []
    for entry in sorted(
        document["tables"].get("entries", []), key=lambda e: (e["started_at"], e["id"])
    ):
        answers = entry.get("answers")
        merged = dict(answers) if isinstance(answers, dict) else {}
        merged.update(entry.get("scores") or {})
        rows.append({**{k: entry.get(k) for k in ENTRY_COLUMNS}, "answers": merged})
    return rows


Asked = dict[str, list[str]]  # dialog → the answers it stores, in the order it asks


def asked(catalog: Catalog) -> Asked:
    """What each dialog asks, in order (JSON-able: it travels to the worker in a `Later`)."""
    found: Asked = {}
    for name in sorted(catalog.locale(catalog.default).dialogs):
        machine = catalog.dialog(name)
        stores = [s.store for s in machine.spec.states.values() if s.store] if machine else []
        if stores:
            found[name] = stores
    return found


def answer_order(asked: Asked, rows: list[dict[str, Any]]) -> list[str]:
    """Answer columns in the order the dialogs ask for them, then any others."""
    order: list[str] = []
    for row in rows:
        for store in asked.get(str(row["dialog"]), []):
            if store not in order:
                order.append(store)
    seen = {k for row in rows for k in row["answers"]}
    return [k for k in order if k in seen] + sorted(seen - set(order))


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def to_csv(document: dict[str, Any], catalog: Catalog) -> bytes:
    return entries_csv(document, asked(catalog))


def entries_csv(document: dict[str, Any], asked: Asked) -> bytes:
    """The entries as CSV, answer columns in `asked` order (see `answer_order`)."""
    rows = entry_rows(document)
    answers = answer_order(asked, rows)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([*ENTRY_COLUMNS, *answers])
    for row in rows:
        writer.writerow(
            [_cell(row[k]) for k in ENTRY_COLUMNS] + [_cell(row["answers"].get(k)) for k in answers]
        )
    return buffer.getvalue().encode("utf-8-sig")  # the BOM makes spreadsheets read UTF-8


def file_stem(now: datetime) -> str:
    return f"kindbot-export-{now:%Y-%m-%d}"


async def send_export(turn: Turn, args: str) -> None:
    """Hand the person their data as two files, with a word about keeping them safe.

    The files are made after the step has committed, in the worker process, which reads
    the rows itself (bot/offload.py): reading, decrypting and formatting a long history in
    the bot's process held everyone else's replies up (SQLite's one writer inside a step;
    the event loop and the garbage collector outside one). Only what the files need is
    decided here: who, the moment, the column order, and the captions in their words.
    """
    assert turn.user.id is not None
    turn.say("export_intro")
    data = {
        "user_id": turn.user.id,
        "now": turn.now.isoformat(),
        "asked": asked(turn.engine.catalog),
        "captions": {
            "json": turn.text("export_json_caption"),
            "csv": turn.text("export_csv_caption"),
        },
    }
    turn.emit(Later(EXPORT, data))
    turn.reprompt()


async def make_export(
    source: DatabaseSource, channel: str, external_id: str, data: dict[str, Any]
) -> list[Output]:
    """The two files, as `send_export` used to make them in its step; nothing for someone
    who is gone (they used /forget meanwhile), and nothing if the row with this id is now
    someone else's (SQLite may give a deleted row's id to the next person): an export goes
    only to the person it describes."""
    user_id = int(data["user_id"])
    now = datetime.fromisoformat(data["now"])
    async with source.session() as (session, cipher):
        if not await is_person(session, user_id=user_id, channel=channel, external_id=external_id):
            return []
        document = export_document(
            await dump_person(session, user_id=user_id, cipher=cipher), now=now
        )
    stem = file_stem(now)
    captions: dict[str, str] = data["captions"]
    return [
        Document(
            to_json(document),
            f"{stem}.json",
            caption=captions["json"],
            mime_type="application/json",
        ),
        Document(
            entries_csv(document, data["asked"]),
            f"{stem}.csv",
            caption=captions["csv"],
            mime_type="text/csv",
        ),
    ]
