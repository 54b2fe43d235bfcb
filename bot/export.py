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

from sqlalchemy.ext.asyncio import AsyncSession

from bot.engine.catalog import Catalog
from bot.engine.events import Document
from bot.engine.runner import Turn
from storage.crypto import Cipher
from storage.personal import dump_person

FORMAT_VERSION = 1
ENTRY_COLUMNS = ("id", "kind", "dialog", "status", "started_at", "finished_at")
# Cells a spreadsheet would run as a formula get a leading apostrophe (OWASP advice).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


async def export_person(
    session: AsyncSession, *, user_id: int, cipher: Cipher, now: datetime
) -> dict[str, Any]:
    """The whole export document: a small header, the users row, every table's rows."""
    header = {"format": "kindbot-export", "version": FORMAT_VERSION, "exported_at": now.isoformat()}
    return header | await dump_person(session, user_id=user_id, cipher=cipher)


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


def answer_order(catalog: Catalog, rows: list[dict[str, Any]]) -> list[str]:
    """Answer columns in the order the dialogs ask for them, then any others."""
    order: list[str] = []
    for row in rows:
        machine = catalog.dialog(str(row["dialog"]))
        if machine is not None:
            for state in machine.spec.states.values():
                if state.store and state.store not in order:
                    order.append(state.store)
    seen = {k for row in rows for k in row["answers"]}
    return [k for k in order if k in seen] + sorted(seen - set(order))


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def to_csv(document: dict[str, Any], catalog: Catalog) -> bytes:
    rows = entry_rows(document)
    answers = answer_order(catalog, rows)
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
    """Hand the person their data as two files, with a word about keeping them safe."""
    assert turn.user.id is not None
    document = await export_person(
        turn.session, user_id=turn.user.id, cipher=turn.cipher, now=turn.now
    )
    stem = file_stem(turn.now)
    turn.say("export_intro")
    turn.emit(
        Document(
            to_json(document),
            f"{stem}.json",
            caption=turn.text("export_json_caption"),
            mime_type="application/json",
        )
    )
    turn.emit(
        Document(
            to_csv(document, turn.engine.catalog),
            f"{stem}.csv",
            caption=turn.text("export_csv_caption"),
            mime_type="text/csv",
        )
    )
    turn.reprompt()
