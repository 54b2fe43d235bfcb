"""`/summary`: a readable document of a chosen period that a person passes on themselves.

Some people want to show their practice to someone they choose, such as a therapist. The
export (bot/export.py) is faithful but made for machines and spreadsheets; this is made to
be read: the period, how many of each practice, averages of the ratings before and after,
then each entry with its words, as Markdown and as a PDF. kindbot only hands the files to
the person; it never sends anything to anyone else.

The document is laid out once as a list of `Block`s (`build`, tested as data) and then
written out twice (`to_markdown`, `to_pdf`). Which answers are ratings, what each answer is
called and what a chosen value means all come from the dialogs (as for /export and
/progress), so a new recorded dialog appears here without code. Every sentence comes from
messages.yaml (`summary_*`).

As with the export, the step only decides what the files need (`summary_make`, the
`summary` dialog's action) and emits a `Later`; the worker process reads and decrypts the
person's entries and makes the files (bot/offload.py), so a long history holds nobody's
reply up. The PDF uses the DejaVu Sans font matplotlib ships (Latin, Cyrillic, Greek, many
symbols and emoji in black and white); a character the font lacks (Chinese, say) becomes
"□" rather than stopping the file, and is replaced before fpdf2 sees it, because fpdf2 logs
the glyphs it cannot draw, and logs never hold what a person wrote.
"""

from __future__ import annotations

import functools
import io
import logging
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from bot.engine.events import Document, Later, Message, Output
from bot.engine.feature import Action
from bot.engine.frame import Frame
from bot.engine.texts import fill
from bot.engine.turn import Turn
from bot.export import Answers, answer_words
from bot.localtime import local, person_zone
from bot.progress import Rated, rated_answers
from storage import repo
from storage.crypto import Cipher
from storage.models import Entry, as_utc
from storage.personal import is_person
from storage.source import DatabaseSource

SUMMARY = "summary"  # the `Later` kind, and its producer's name in Engine.producers
# The summary dialog's `period` choices: how many days back (None: everything).
PERIODS: dict[str, int | None] = {"week": 7, "month": 30, "all": None}
# Sections in this order; any other recorded dialog follows, by title.
SECTION_ORDER = ("reframe", "checkin", "journal", "reflection")
MISSING = "□"  # drawn for a character the PDF's font has no glyph for
FONT_FILES = {"": "DejaVuSans.ttf", "B": "DejaVuSans-Bold.ttf"}
# The words the document needs (messages.yaml), picked in the step with the person's phrasing.
WORD_KEYS = (
    "summary_title",
    "summary_note",
    "summary_period_days",
    "summary_period_all",
    "summary_made",
    "summary_zone",
    "summary_at_a_glance",
    "summary_count",
    "summary_count_unfinished",
    "summary_average",
    "summary_ratings",
    "summary_date",
    "summary_time",
    "summary_unfinished",
    "summary_empty",
    "summary_intro",
    "summary_md_caption",
    "summary_pdf_caption",
)

Kind = Literal["title", "para", "heading", "subheading", "bullet", "item"]


@dataclass(frozen=True, slots=True)
class Block:
    """One piece of the document: `item` is a labelled answer in the person's words."""

    kind: Kind
    text: str
    label: str = ""


# -- the step --------------------------------------------------------------------------------
def summary_actions(default_zone: str) -> dict[str, Action]:
    """The summary dialog's action; times in `default_zone` for someone without a zone."""

    async def make(turn: Turn, frame: Frame) -> None:
        await summary_make(turn, frame, default_zone=default_zone)

    return {"summary_make": make}


async def summary_make(turn: Turn, frame: Frame, *, default_zone: str = "UTC") -> None:
    """Ask for the files of the chosen period: what they need from the catalog and the
    person's words travel in a `Later`; the worker reads the entries (see the docstring)."""
    assert turn.user.id is not None
    catalog, locale = turn.engine.catalog, turn.locale.code
    period = str(frame.answers.get("period", "all"))
    data = {
        "user_id": turn.user.id,
        "now": turn.now.isoformat(),
        "days": PERIODS.get(period),
        "zone": person_zone(turn.user.timezone, default_zone).key,
        "answers": answer_words(catalog, locale),
        "rated": rated_answers(catalog, locale),
        "words": {key: turn.locale.message(key, run=turn.step) for key in WORD_KEYS},
    }
    turn.emit(Later(SUMMARY, data))


# -- the worker ------------------------------------------------------------------------------
async def make_summary(
    source: DatabaseSource, channel: str, external_id: str, data: dict[str, Any]
) -> list[Output]:
    """The two files, or a kind word when the period holds nothing; nothing at all for
    someone who is gone (used /forget meanwhile, or the id is now someone else's)."""
    user_id = int(data["user_id"])
    async with source.session() as (session, cipher):
        if not await is_person(session, user_id=user_id, channel=channel, external_id=external_id):
            return []
        stored = await repo.list_entries(session, user_id=user_id)
        return summary_outputs(stored, cipher, data)


def summary_outputs(entries: list[Entry], cipher: Cipher, data: dict[str, Any]) -> list[Output]:
    """What the person gets for their entries (newest first, as `list_entries` gives them)."""
    now = datetime.fromisoformat(data["now"])
    where = person_zone(data.get("zone"), "UTC")
    words: dict[str, str] = data["words"]
    chosen = in_period(entries, now, data.get("days"))
    if not chosen:
        return [Message(words["summary_empty"])]
    rows = [(entry, repo.entry_answers(entry, cipher=cipher)) for entry in chosen]
    blocks = build(
        rows, data["answers"], data["rated"], words, now=now, where=where, days=data.get("days")
    )
    stem = f"kindbot-summary-{local(now, where):%Y-%m-%d}"
    return [
        Message(words["summary_intro"]),
        Document(
            to_markdown(blocks).encode("utf-8"),
            f"{stem}.md",
            caption=words["summary_md_caption"],
            mime_type="text/markdown",
        ),
        Document(
            to_pdf(blocks, title=words["summary_title"]),
            f"{stem}.pdf",
            caption=words["summary_pdf_caption"],
            mime_type="application/pdf",
        ),
    ]


def in_period(entries: list[Entry], now: datetime, days: int | None) -> list[Entry]:
    """The entries started in the last `days` days up to `now` (all with None), oldest
    first."""
    since = None if days is None else now - timedelta(days=days)
    chosen = [
        e
        for e in entries
        if (since is None or as_utc(e.started_at) >= since) and as_utc(e.started_at) <= now
    ]
    return sorted(chosen, key=lambda e: (as_utc(e.started_at), e.id or 0))


def _sections(rows: list[tuple[Entry, dict[str, Any]]], answers: Answers) -> list[str]:
    present = {entry.dialog for entry, _ in rows}
    known = [d for d in SECTION_ORDER if d in present]
    rest = sorted(present - set(known), key=lambda d: (_title(answers, d), d))
    return known + rest


def _title(answers: Answers, dialog: str) -> str:
    return str(answers.get(dialog, {}).get("title") or dialog)


def _average(values: list[int]) -> str:
    return f"{sum(values) / len(values):.1f}".removesuffix(".0")


def _pair(answers: dict[str, Any], pairs: list[list[str]]) -> tuple[Any, Any, list[str]] | None:
    """The first before/after pair this entry has a rating in: (before, after, names)."""
    for names in pairs:
        before, after = (answers.get(n) for n in names)
        if before is not None or after is not None:
            return before, after, names
    return None


def build(
    rows: list[tuple[Entry, dict[str, Any]]],
    answers: Answers,
    rated: Rated,
    words: dict[str, str],
    *,
    now: datetime,
    where: ZoneInfo,
    days: int | None,
) -> list[Block]:
    """The document: header (what it is and is not), period, counts, then a section per
    practice with its averages and each entry (oldest first) in the person's words."""
    first, last = rows[0][0].started_at, now

    def day(moment: datetime) -> str:
        return local(moment, where).strftime(words["summary_date"])

    period = (
        fill(
            words["summary_period_days"],
            {"days": days, "start": day(now - timedelta(days=days)), "end": day(last)},
        )
        if days is not None
        else fill(words["summary_period_all"], {"start": day(first), "end": day(last)})
    )
    blocks = [
        Block("title", words["summary_title"]),
        Block("para", words["summary_note"]),
        Block("para", period),
        Block("para", fill(words["summary_made"], {"when": day(now)})),
        Block("para", fill(words["summary_zone"], {"zone": where.key})),
        Block("heading", words["summary_at_a_glance"]),
    ]
    sections = _sections(rows, answers)
    for dialog in sections:
        mine = [entry for entry, _ in rows if entry.dialog == dialog]
        unfinished = sum(entry.status != "finished" for entry in mine)
        key = "summary_count_unfinished" if unfinished else "summary_count"
        values = {"title": _title(answers, dialog), "count": len(mine), "unfinished": unfinished}
        blocks.append(Block("bullet", fill(words[key], values)))
    for dialog in sections:
        mine_rows = [(entry, given) for entry, given in rows if entry.dialog == dialog]
        blocks.append(Block("heading", f"{_title(answers, dialog)} ({len(mine_rows)})"))
        pairs = rated.get(dialog, [])
        both = [p for _, given in mine_rows if (p := _pair(given, pairs)) and None not in p[:2]]
        if both:
            values = {
                "before": _average([int(p[0]) for p in both]),
                "after": _average([int(p[1]) for p in both]),
                "count": len(both),
            }
            blocks.append(Block("para", fill(words["summary_average"], values)))
        for entry, given in mine_rows:
            blocks.extend(_entry_blocks(entry, given, answers.get(dialog, {}), pairs, words, where))
    return blocks


def _entry_blocks(
    entry: Entry,
    given: dict[str, Any],
    dialog: dict[str, Any],
    pairs: list[list[str]],
    words: dict[str, str],
    where: ZoneInfo,
) -> list[Block]:
    """One entry: when, its ratings before → after, then every answer under its label, in
    the order the dialog asks (answers no label names follow, humanized)."""
    heading = local(entry.started_at, where).strftime(words["summary_time"])
    if entry.status != "finished":
        heading += " " + words["summary_unfinished"]
    blocks = [Block("subheading", heading)]
    pair = _pair(given, pairs)
    shown: set[str] = set()
    if pair is not None:
        before, after, names = pair
        shown.update(names)
        values = {
            "before": "–" if before is None else before,
            "after": "–" if after is None else after,
        }
        blocks.append(Block("para", fill(words["summary_ratings"], values)))
    labels: dict[str, str] = dialog.get("labels", {})
    chosen: dict[str, dict[str, str]] = dialog.get("values", {})
    order = [k for k in labels if k in given] + sorted(k for k in given if k not in labels)
    for name in order:
        value = given[name]
        if name in shown or value in (None, ""):
            continue
        label = labels.get(name) or name.replace("_", " ").capitalize()
        blocks.append(Block("item", str(chosen.get(name, {}).get(str(value), value)), label))
    return blocks


# -- Markdown ------------------------------------------------------------------------------
_MARKDOWN_SPECIAL = "\\`*_[]<>#|"


def _md(text: str) -> str:
    """A person's words as Markdown text that shows them as written (no markup, no HTML)."""
    escaped = "".join("\\" + c if c in _MARKDOWN_SPECIAL else c for c in text)
    lines = []
    for line in escaped.split("\n"):
        head, rest = line[:1], line[1:]
        if head in ("-", "+", "=") or (head.isdigit() and rest.lstrip("0123456789")[:1] == "."):
            line = "\\" + line if not head.isdigit() else line.replace(".", "\\.", 1)
        lines.append(line)
    return "\n".join(lines)


def to_markdown(blocks: list[Block]) -> str:
    """The document as Markdown; a person's words are quoted, line by line."""
    out: list[str] = []  # paragraphs; a list's items share one
    for block in blocks:
        text = _md(block.text)
        if block.kind == "bullet":
            item = f"- {text}"
            if out and out[-1].startswith("- "):
                out[-1] += "\n" + item
            else:
                out.append(item)
        elif block.kind == "item":
            quoted = "\n".join(f"> {line}" if line else ">" for line in text.split("\n"))
            out.append(f"**{_md(block.label)}:**\n\n{quoted}")
        else:
            prefix = {"title": "# ", "heading": "## ", "subheading": "### "}.get(block.kind, "")
            out.append(prefix + text)
    return "\n\n".join(out) + "\n"


# -- PDF -----------------------------------------------------------------------------------
def font_dir() -> Path:
    """DejaVu Sans as matplotlib ships it (a dependency already, for /progress)."""
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


@functools.cache
def drawable() -> frozenset[int]:
    """The characters both of the PDF's fonts have a glyph for."""
    from fontTools.ttLib import TTFont

    sets = [set(TTFont(font_dir() / name).getBestCmap()) for name in FONT_FILES.values()]
    return frozenset(set.intersection(*sets))


def printable(text: str) -> str:
    """`text` with what the font cannot draw left out (invisible joiners and variation
    selectors) or shown as "□" (anything else), so the PDF never depends on a missing glyph."""
    known = drawable()
    out = []
    for char in text.replace("\r", ""):
        if char in "\n\t" or ord(char) in known:
            out.append(char)
        elif unicodedata.category(char) not in ("Cf", "Mn", "Me", "Cc"):
            out.append(MISSING)
    return "".join(out)


def to_pdf(blocks: list[Block], *, title: str) -> bytes:
    """The document as an A4 PDF (fpdf2); a person's words indented under their label."""
    from fpdf import FPDF

    # fpdf2 and fontTools log glyph names at INFO; nothing about the text goes to logs
    for name in ("fpdf", "fontTools"):
        logging.getLogger(name).setLevel(logging.WARNING)
    pdf = FPDF(format="A4")
    pdf.set_title(printable(title))
    pdf.set_creator("kindbot")
    for style, name in FONT_FILES.items():
        pdf.add_font("DejaVu", style, str(font_dir() / name))
    pdf.set_auto_page_break(auto=True, margin=18)
    pdf.add_page()
    sizes: dict[str, tuple[str, float, float, float]] = {  # style, size, line height, space after
        "title": ("B", 16, 8, 3),
        "heading": ("B", 13, 7, 2),
        "subheading": ("B", 11, 6, 1),
        "para": ("", 10.5, 5.5, 2),
        "bullet": ("", 10.5, 5.5, 0.5),
    }
    for block in blocks:
        text = printable(block.text)
        if block.kind == "item":
            pdf.set_font("DejaVu", "B", 10)
            pdf.multi_cell(0, 5.5, printable(block.label), new_x="LMARGIN", new_y="NEXT")
            pdf.set_font("DejaVu", "", 10.5)
            pdf.set_x(pdf.l_margin + 5)
            pdf.multi_cell(pdf.epw - 5, 5.5, text, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(2)
            continue
        style, size, height, after = sizes[block.kind]
        if block.kind in ("heading", "subheading"):
            pdf.ln(2)
        pdf.set_font("DejaVu", style, size)
        if block.kind == "bullet":
            text = "•  " + text
        pdf.multi_cell(0, height, text, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(after)
    buffer = io.BytesIO()
    pdf.output(buffer)
    return buffer.getvalue()


# the name the summary dialog may use (`kindbot dialogs check`); the app installs
# `summary_actions(DEFAULT_TIMEZONE)`
SUMMARY_ACTIONS: dict[str, Action] = summary_actions("UTC")
