"""Input events an adapter hands to the engine, and outputs the engine hands back.

Adapters (Telegram, terminal) translate their world into these and render the outputs as
they see fit: buttons or a numbered list, an image or a file path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class Text:
    """Free text the person typed; `at` is when they sent it, if the adapter knows."""

    text: str
    at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ChoiceMade:
    """A button pressed; `step` ties it to the prompt that offered it (None: the current one)."""

    value: str
    step: int | None = None


@dataclass(frozen=True, slots=True)
class Command:
    """A slash command, without the slash, lower-cased."""

    name: str
    args: str = ""


@dataclass(frozen=True, slots=True)
class Reminder:
    """A scheduled reminder fired for this person."""

    kind: str


@dataclass(frozen=True, slots=True)
class Unsupported:
    """Something the adapter cannot turn into text: a photo, a sticker, a voice note.

    `caption` is text sent along with it: never an answer, but still safety-screened.
    """

    kind: str
    caption: str = ""


@dataclass(frozen=True, slots=True)
class Location:
    """A place the person shared; used at once (to find their timezone), never stored."""

    latitude: float
    longitude: float


@dataclass(frozen=True, slots=True)
class Edited:
    """A message the person changed after sending: never a new answer, but still screened."""

    text: str


Event = Text | ChoiceMade | Command | Reminder | Unsupported | Location | Edited


@dataclass(frozen=True, slots=True)
class Option:
    """One offered choice; `numbered`: a typed number may pick it (see `match_choice`)."""

    value: str
    label: str
    numbered: bool = True


@dataclass(frozen=True, slots=True)
class Scale:
    """A numeric rating the person is asked for (inclusive bounds)."""

    low: int = 0
    high: int = 10


@dataclass(frozen=True, slots=True)
class Message:
    """Text to show, optionally with choices or a scale bound to the dialog step `step`.

    `edits`: the message shows in place of the message just before it in the same reply
    (paced exercises), whose text it repeats in full. An adapter that can change a sent
    message (Telegram: editMessageText) changes it; one that cannot shows it as usual.

    `location`: the label of a button that shares the person's location (Telegram's
    location request), offered under a text question; an adapter that cannot share one
    leaves it out (the question's words say what else to type)."""

    text: str
    options: tuple[Option, ...] = ()
    scale: Scale | None = None
    step: int | None = None
    edits: bool = False
    location: str = ""


@dataclass(frozen=True, slots=True)
class Image:
    """A picture, such as a progress chart (PNG bytes)."""

    data: bytes
    filename: str
    caption: str = ""


@dataclass(frozen=True, slots=True)
class Document:
    """A file to hand over, such as an export."""

    data: bytes
    filename: str
    caption: str = ""
    mime_type: str = "application/octet-stream"


@dataclass(frozen=True, slots=True)
class Pause:
    """Wait before the next output (paced exercises); adapters must not block other users."""

    seconds: float


@dataclass(frozen=True, slots=True)
class DialogEnded:
    """A dialog reached its end."""

    dialog: str
    completed: bool = True


@dataclass(frozen=True, slots=True)
class Later:
    """Output made after the step has committed, off the event loop: a chart, an export.

    `kind` names a producer in `Engine.producers`; `data` is what it needs, JSON-able (it is
    kept in the outbox with the rest of the reply until the reply is sent). Slow work done
    here holds no lock and no transaction, so nobody waits behind it.
    """

    kind: str
    data: dict[str, Any] = field(default_factory=dict)


Output = Message | Image | Document | Pause | DialogEnded | Later


@dataclass(frozen=True, slots=True)
class UserRef:
    """Who an event comes from, as the adapter knows them."""

    channel: str
    external_id: str
    locale: str | None = None
    language_tag: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.channel}:{self.external_id}"
