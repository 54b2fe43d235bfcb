"""`/history`: a person's entries, newest first, a page at a time; one opens in full.

The `history` dialog (dialogs/<locale>/history.yaml) holds the flow and the wording; these
actions fill in what only code knows: the page of entries offered as choices (`open_<id>`,
`page_<n>`) and the text of one entry. Their words go only into the (encrypted)
conversation state and back to them, never into logs.

Dates and times are on the person's clock (bot/localtime.py), with the zone named in the
full view. Every entry that is not finished reads "unfinished", whether it was stopped or
is still open.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.engine.feature import Action
from bot.engine.frame import Frame
from bot.engine.schema import DialogSpec
from bot.engine.turn import Turn
from bot.localtime import local, person_zone
from storage import repo
from storage.models import Entry

PAGE_SIZE = 5


def dialog_title(turn: Turn, dialog: str) -> str:
    machine = turn.engine.catalog.dialog(dialog, turn.locale.code)
    title = machine.spec.title if machine else dialog
    return title[:1].upper() + title[1:]


def answer_labels(spec: DialogSpec | None) -> dict[str, str]:
    """Stored answer name → how it is shown, in the order the dialog asks for them (a fixed
    answer a state records comes before the one it asks for)."""
    if spec is None:
        return {}
    labels: dict[str, str] = {}
    for state in spec.states.values():
        for key in state.record:
            words = spec.recorded.get(key)
            labels[key] = words.label if words else _humanize(key)
        if state.store:
            labels[state.store] = state.label or _humanize(state.store)
    return labels


def _humanize(name: str) -> str:
    text = name.replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def choice_labels(spec: DialogSpec | None) -> dict[str, dict[str, str]]:
    """Stored answer name → {value → its words}: a choice's button label, or a recorded
    value's words from `recorded:`, so history shows words, not codes."""
    if spec is None:
        return {}
    labels = {key: dict(words.values) for key, words in spec.recorded.items()}
    labels.update(
        {
            s.store: {c.value: c.label for c in s.choices}
            for s in spec.states.values()
            if s.store and s.choices
        }
    )
    return labels


def ordered_answers(spec: DialogSpec | None, answers: dict[str, Any]) -> list[tuple[str, Any]]:
    """(label, value) for every answer: the dialog's order first, anything else after."""
    labels = answer_labels(spec)
    pressed = choice_labels(spec)
    known = [
        (labels[k], pressed.get(k, {}).get(str(answers[k]), answers[k]))
        for k in labels
        if answers.get(k) not in (None, "")
    ]
    rest = [(_humanize(k), v) for k, v in sorted(answers.items()) if k not in labels]
    return known + rest


def when(turn: Turn, moment: datetime, key: str, where: ZoneInfo) -> str:
    return local(moment, where).strftime(turn.text(key))


def history_actions(default_zone: str) -> dict[str, Action]:
    """The history dialog's actions; times are shown in `default_zone` for someone who has
    not chosen a zone."""

    async def page(turn: Turn, frame: Frame) -> None:
        await history_page(turn, frame, person_zone(turn.user.timezone, default_zone))

    async def open_(turn: Turn, frame: Frame) -> None:
        await history_open(turn, frame, person_zone(turn.user.timezone, default_zone))

    return {"history_page": page, "history_open": open_}


async def history_page(turn: Turn, frame: Frame, where: ZoneInfo) -> None:
    """Offer one page of entries as choices, with Newer/Older to move between pages."""
    page = int(frame.params.get("page", 0))
    assert turn.user.id is not None
    entries = await repo.list_entries(
        turn.session, user_id=turn.user.id, offset=page * PAGE_SIZE, limit=PAGE_SIZE + 1
    )
    more = len(entries) > PAGE_SIZE
    entries = entries[:PAGE_SIZE]
    options: list[tuple[str, str]] = []
    for entry in entries:
        ratings = _ratings_text(turn, entry.scores, entry.dialog)
        label = turn.text(
            "history_option_rated" if ratings else "history_option",
            date=when(turn, entry.started_at, "history_date_short", where),
            title=dialog_title(turn, entry.dialog),
            ratings=ratings,
        )
        if entry.status != "finished":
            label += " " + turn.text("history_unfinished")
        options.append((f"open_{entry.id}", label))
    if page > 0:
        options.append((f"page_{page - 1}", turn.text("history_newer")))
    if more:
        options.append((f"page_{page + 1}", turn.text("history_older")))
    frame.options = options
    if not entries and page == 0:
        frame.params["listing"] = turn.text("history_empty")
    else:
        frame.params["listing"] = turn.text("history_header", page=page + 1)
    frame.params.pop("entry_text", None)


def _ratings_text(turn: Turn, scores: dict[str, int], dialog: str) -> str:
    machine = turn.engine.catalog.dialog(dialog, turn.locale.code)
    if machine is None:
        return ""
    for derived in machine.spec.derived.values():
        before, after = (scores.get(n) for n in derived.difference)
        if before is not None and after is not None:
            return f"{before} → {after}"
        if before is not None:
            return str(before)
    return ""


async def history_open(turn: Turn, frame: Frame, where: ZoneInfo) -> None:
    """Act on what was picked: move to another page, or show one entry in full."""
    picked = str(frame.answers.pop("pick", ""))
    kind, _, number = picked.partition("_")
    frame.params["view"] = "list"
    if not number.isdigit():
        return
    if kind == "page":
        frame.params["page"] = int(number)
        return
    assert turn.user.id is not None
    entry = await repo.get_entry(turn.session, user_id=turn.user.id, entry_id=int(number))
    if entry is None:
        return  # gone (or never theirs): back to the list
    frame.params["entry_text"] = entry_text(turn, entry, where)
    frame.params["view"] = "entry"


def entry_text(turn: Turn, entry: Entry, where: ZoneInfo) -> str:
    machine = turn.engine.catalog.dialog(entry.dialog, turn.locale.code)
    answers = repo.entry_answers(entry, cipher=turn.cipher)
    if entry.status == "in_progress":
        # an open dialog keeps its answers in the conversation until it stops or finishes
        for open_frame in [*turn.stack, *turn.paused.values()]:
            if open_frame.entry_id == entry.id:
                answers = {**answers, **open_frame.answers}
    title = turn.text(
        "history_entry_title",
        title=dialog_title(turn, entry.dialog),
        when=when(turn, entry.started_at, "history_date_long", where),
    )
    if entry.status != "finished":
        title += " " + turn.text("history_unfinished")
    lines = [title, ""]
    for label, value in ordered_answers(machine.spec if machine else None, answers):
        lines.append(turn.text("history_entry_line", label=label, value=value))
    if not answers:
        lines.append(turn.text("history_entry_empty"))
    return "\n".join(lines)


# the names the history dialog may use (`kindbot dialogs check`); the app installs
# `history_actions(DEFAULT_TIMEZONE)`
HISTORY_ACTIONS: dict[str, Action] = history_actions("UTC")
