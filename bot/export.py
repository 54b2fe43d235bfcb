"""`/export` and `kindbot export`: everything stored about a person, as JSON and CSV.

The JSON holds every row about them in every table (see storage/personal.py), with
encrypted columns decrypted; it is the faithful copy, with an `about` part saying what each
field means (`export_about` in messages.yaml) and the words of each stored answer's name
and value (the dialogs' `label`s and choices). The CSV is a spreadsheet-friendly view of
their entries, one row per entry and one column per answer, in words: the answers' labels
as column names, chosen values as their labels, one word for every unfinished entry
(stopped or still open) and times on the person's clock, the zone named in the header.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from typing import Any

from bot.engine.catalog import Catalog
from bot.engine.events import Document, Later, Output
from bot.engine.feature import CommandHandler
from bot.engine.texts import fill
from bot.engine.turn import Turn
from bot.history import answer_labels, choice_labels
from bot.localtime import local, person_zone
from storage.personal import dump_person, is_person
from storage.source import DatabaseSource

FORMAT_VERSION = 1
EXPORT = "export"  # the `Later` kind, and its producer's name in Engine.producers
ENTRY_COLUMNS = ("id", "kind", "dialog", "status", "started_at", "finished_at")
# The spreadsheet's fixed columns, by message key: entry id, practice, status, the times.
CSV_COLUMNS = (
    "export_column_id",
    "export_column_practice",
    "export_column_status",
    "export_column_started",
    "export_column_finished",
)
WORD_KEYS = (*CSV_COLUMNS, "export_status_finished", "export_status_unfinished")
CSV_TIME = "%Y-%m-%d %H:%M"
# Cells a spreadsheet would run as a formula get a leading apostrophe (OWASP advice).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def export_document(
    person: dict[str, Any], *, now: datetime, about: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The whole export document: a small header, what its fields mean (`about`), then the
    users row and every table's rows as `storage.personal.dump_person` read them."""
    header = {"format": "kindbot-export", "version": FORMAT_VERSION, "exported_at": now.isoformat()}
    return header | ({"about": about} if about is not None else {}) | person


Answers = dict[str, dict[str, Any]]  # dialog → its title, answer labels and value words


def answer_words(catalog: Catalog, locale: str) -> Answers:
    """Per recorded dialog: its title, each stored answer's label in the order it is asked,
    and the words of chosen values (JSON-able: it travels to the worker in a `Later`)."""
    found: Answers = {}
    for name in sorted(catalog.locale(catalog.default).dialogs):
        machine = catalog.dialog(name, locale)
        if machine is None or not machine.spec.entry:
            continue
        spec = machine.spec
        found[name] = {
            "title": spec.title[:1].upper() + spec.title[1:],
            "labels": answer_labels(spec),
            "values": {k: v for k, v in choice_labels(spec).items() if v},
        }
    return found


def about(catalog: Catalog, locale: str) -> dict[str, Any]:
    """The JSON's `about` part: what every field means, and each answer name's words."""
    lines = catalog.locale(locale).message("export_about").splitlines()
    fields = dict(line.partition(": ")[::2] for line in lines if ": " in line)
    answers = answer_words(catalog, locale)
    return {
        "times": fields.pop("times", ""),
        "fields": fields,
        "answer_labels": {d: a["labels"] for d, a in answers.items()},
        "answer_values": {d: a["values"] for d, a in answers.items() if a["values"]},
    }


def words_for(catalog: Catalog, locale: str) -> dict[str, str]:
    """The spreadsheet's column names and status words, in the locale's words."""
    texts = catalog.locale(locale)
    return {key: texts.message(key) for key in WORD_KEYS}


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


def answer_order(answers: Answers, rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(answer name, its column name): in the order the dialogs ask, then any others."""
    order: dict[str, str] = {}
    for row in rows:
        for store, label in answers.get(str(row["dialog"]), {}).get("labels", {}).items():
            order.setdefault(store, label)
    seen = {k for row in rows for k in row["answers"]}
    known = [(k, label) for k, label in order.items() if k in seen]
    rest = [(k, k.replace("_", " ").capitalize()) for k in sorted(seen - set(order))]
    return known + rest


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def _time_cell(value: Any, where: Any) -> str:
    if not value:
        return ""
    return local(datetime.fromisoformat(str(value)), where).strftime(CSV_TIME)


def to_csv(document: dict[str, Any], catalog: Catalog, default_zone: str = "UTC") -> bytes:
    """The spreadsheet in the default locale's words (`kindbot export --format csv`)."""
    locale = document["user"].get("locale") or catalog.default
    return entries_csv(
        document,
        answer_words(catalog, locale),
        words_for(catalog, locale),
        zone_name=document["user"].get("timezone") or default_zone,
    )


def entries_csv(
    document: dict[str, Any], answers: Answers, words: dict[str, str], *, zone_name: str
) -> bytes:
    """The entries as CSV: fixed columns, then one per answer (see `answer_order`)."""
    where = person_zone(zone_name, "UTC")
    rows = entry_rows(document)
    columns = answer_order(answers, rows)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    header = [fill(words[key], {"zone": where.key}) for key in CSV_COLUMNS]
    writer.writerow([*header, *(label for _, label in columns)])
    for row in rows:
        dialog = answers.get(str(row["dialog"]), {})
        values: dict[str, dict[str, str]] = dialog.get("values", {})
        finished = row["status"] == "finished"
        fixed = [
            row["id"],
            dialog.get("title", row["dialog"]),
            words["export_status_finished" if finished else "export_status_unfinished"],
            _time_cell(row["started_at"], where),
            _time_cell(row["finished_at"], where),
        ]
        answered = [
            values.get(k, {}).get(str(row["answers"].get(k)), row["answers"].get(k))
            for k, _ in columns
        ]
        writer.writerow([_cell(v) for v in [*fixed, *answered]])
    return buffer.getvalue().encode("utf-8-sig")  # the BOM makes spreadsheets read UTF-8


def file_stem(now: datetime) -> str:
    return f"kindbot-export-{now:%Y-%m-%d}"


def export_command(default_zone: str) -> CommandHandler:
    """/export, with times shown in `default_zone` for someone who has not chosen a zone."""

    async def command(turn: Turn, args: str) -> None:
        await send_export(turn, args, default_zone=default_zone)

    return command


async def send_export(turn: Turn, args: str, *, default_zone: str = "UTC") -> None:
    """Hand the person their data as two files, with a word about keeping them safe.

    The files are made after the step has committed, in the worker process, which reads
    the rows itself (bot/offload.py): reading, decrypting and formatting a long history in
    the bot's process held everyone else's replies up (SQLite's one writer inside a step;
    the event loop and the garbage collector outside one). Only what the files need is
    decided here: who, the moment, their zone, the fields' words, and the captions.
    """
    assert turn.user.id is not None
    turn.say("export_intro")
    catalog, locale = turn.engine.catalog, turn.locale.code
    data = {
        "user_id": turn.user.id,
        "now": turn.now.isoformat(),
        "zone": person_zone(turn.user.timezone, default_zone).key,
        "about": about(catalog, locale),
        "answers": answer_words(catalog, locale),
        "words": words_for(catalog, locale),
        "captions": {
            "json": turn.text("export_json_caption"),
            "csv": turn.text("export_csv_caption"),
        },
    }
    turn.emit(Later(EXPORT, data))
    turn.say("export_summary_offer")
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
            await dump_person(session, user_id=user_id, cipher=cipher),
            now=now,
            about=data["about"],
        )
    stem = file_stem(local(now, person_zone(data.get("zone"), "UTC")))  # their date
    captions: dict[str, str] = data["captions"]
    return [
        Document(
            to_json(document),
            f"{stem}.json",
            caption=captions["json"],
            mime_type="application/json",
        ),
        Document(
            entries_csv(document, data["answers"], data["words"], zone_name=data["zone"]),
            f"{stem}.csv",
            caption=captions["csv"],
            mime_type="text/csv",
        ),
    ]
