"""The shape of a dialog file, as a pydantic schema.

A dialog is data: states say something (one of several phrasings), expect an answer of some
kind, store it under a name, and say where to go next, optionally on simple conditions on
stored answers. See README "Writing a dialog".
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Expect = Literal["text", "choice", "scale", "none"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ChoiceSpec(_Strict):
    """One button. `next` overrides the state's `next`; `start` leaves for another dialog.

    `aliases` are typed answers that count as pressing it ("no", "not really"), compared
    without case or punctuation. `by_number: false` marks a choice that undoes, deletes,
    turns off, goes back or ends a safety pause: a typed number never picks it (pressed, or
    typed in words, it still works).
    """

    value: str = Field(min_length=1, max_length=32, pattern=r"^[a-z0-9_]+$")
    label: str = Field(min_length=1)
    next: str | None = None
    start: str | None = None
    aliases: list[str] = Field(default_factory=list)
    by_number: bool = True


class Condition(_Strict):
    """A test on one stored answer; every given comparison must hold. `present: false`
    holds when the answer is missing (never given, or skipped), `present: true` when it is
    there: a phrase remembered from an earlier run, say."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    answer: str
    present: bool | None = None
    equals: str | int | None = None
    one_of: list[str | int] | None = Field(default=None, alias="in")
    gte: float | None = None
    lte: float | None = None
    gt: float | None = None
    lt: float | None = None

    @model_validator(mode="after")
    def _has_test(self) -> Condition:
        tests = (self.present, self.equals, self.one_of, self.gte, self.lte, self.gt, self.lt)
        if all(v is None for v in tests):
            raise ValueError("a condition needs one of: present, equals, in, gte, lte, gt, lt")
        return self

    def holds(self, answers: dict[str, Any]) -> bool:
        value = answers.get(self.answer)
        if self.present is not None and (value not in (None, "")) != self.present:
            return False
        if value is None:
            return self.present is False
        if self.equals is not None and value != self.equals:
            return False
        if self.one_of is not None and value not in self.one_of:
            return False
        if any(b is not None for b in (self.gte, self.lte, self.gt, self.lt)):
            if not isinstance(value, int | float):
                return False
            if self.gte is not None and not value >= self.gte:
                return False
            if self.lte is not None and not value <= self.lte:
                return False
            if self.gt is not None and not value > self.gt:
                return False
            if self.lt is not None and not value < self.lt:
                return False
        return True


class Branch(_Strict):
    """Go to `to` when `when` holds (no `when`: always; put it last)."""

    when: Condition | None = None
    to: str


class ScaleSpec(_Strict):
    low: int = 0
    high: int = 10


class StateSpec(_Strict):
    """One step of a dialog."""

    say: list[str] = Field(default_factory=list)
    expect: Expect = "none"
    choices: list[ChoiceSpec] = Field(default_factory=list)
    scale: ScaleSpec = ScaleSpec()
    store: str | None = Field(default=None, pattern=r"^[a-z_][a-z0-9_]*$")
    next: str | list[Branch] | None = None
    end: bool = False
    action: str | None = None
    start: str | None = None
    pause: float = Field(default=0, ge=0, le=30)
    # Shown in place, not as a new message (paced exercises, fewer notifications): `append`
    # adds this text to the message just shown as a new paragraph; `replace` puts it in place
    # of what the previous `join` state added (or of the whole message, if none did).
    join: Literal["append", "replace"] | None = None
    # Run another dialog on top, then carry on with `next` here once it ends.
    call: str | None = None
    # Said instead of the generic hint when a typed answer is not understood.
    retry: list[str] = Field(default_factory=list)
    # Fixed answers recorded on entering the state (what was done, which band).
    record: dict[str, str] = Field(default_factory=dict)
    # Choices made in code (an action's name): the action fills `Frame.options` when the
    # state is entered, e.g. a page of the person's entries; they are offered before the
    # static `choices`, and picking one stores its value and follows `next`.
    choices_from: str | None = None
    # How the stored answer is named when shown back (history, export); optional.
    label: str | None = None
    # Whether a typed number picks one of the choices (by its place in the list). False
    # where a number means something else, like an hour at a time question (and always at a
    # scale: there a number is a rating, and its buttons, such as "Skip", are words only).
    numbers: bool = True
    # A text question's "share my location" button (its label), where the adapter has one.
    location: str | None = None
    # The longest answer this text question takes (a journal's free writing), in place of
    # the MAX_TEXT_CHARS setting; longer text is offered in part, as anywhere else.
    max_chars: int | None = Field(default=None, ge=1, le=20000)
    # At a choice: the text question that words typed here answer, instead of a button (the
    # journal's "guided, or write freely?": someone who starts writing is writing freely).
    typed: str | None = None

    @field_validator("say", "retry", mode="before")
    @classmethod
    def _one_phrasing_is_a_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    def branches(self) -> list[Branch]:
        if self.next is None:
            return []
        if isinstance(self.next, str):
            return [Branch(to=self.next)]
        return list(self.next)


class Difference(_Strict):
    """`after - before`, for showing how a rating changed."""

    difference: tuple[str, str]


class RecordedSpec(_Strict):
    """How a fixed `record:` answer is shown back (history): its name and each value's words."""

    label: str = Field(min_length=1)
    values: dict[str, str] = Field(default_factory=dict)


class DialogSpec(_Strict):
    """A whole dialog file."""

    dialog: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    title: str = Field(min_length=1)
    command: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_]*$")
    description: str = ""
    start: str
    entry: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_]*$")
    # Its text answers are the person's own words, kept as a journal entry (by `entry`, or
    # by an action, as the evening reflection is): they need words, a throwaway answer gets
    # a nudge, and a piece sent just after is added to them. Defaults to whether `entry` is set.
    journal: bool | None = None
    requires_consent: bool = True
    # With `requires_consent`: once the person has said "Not now" to storage, it still runs,
    # keeping nothing (no entry; its answers live only in the running dialog).
    unrecorded: bool = False
    # False for a dialog about the moment (the check-in): stopped, what it recorded is kept
    # as it stands and never offered to continue; asked for again, it starts fresh.
    resumable: bool = True
    params: list[str] = Field(default_factory=list)
    derived: dict[str, Difference] = Field(default_factory=dict)
    # Words for the fixed answers states `record` (required in a dialog kept as an entry).
    recorded: dict[str, RecordedSpec] = Field(default_factory=dict)
    # Answers carried from run to run (a person's own phrases): at the start of each run
    # they are read from the person's latest entry of this dialog's `entry` kind that holds
    # them, and kept with this run's answers, so they are quoted until the person changes
    # them (a state that stores the name again). Encrypted like every stored answer.
    remembered: list[str] = Field(default_factory=list)
    states: dict[str, StateSpec] = Field(min_length=1)
    # Which crisis-screen layers may pause this dialog. `patterns`: while it is on top, only
    # the readable patterns do (every message is still screened); for a dialog whose answers
    # are about the crisis itself, like a safety plan's warning signs and means to put away.
    screen: Literal["both", "patterns"] = "both"

    @property
    def keeps_words(self) -> bool:
        """Whether its text answers are kept as the person's own words (see `journal`)."""
        return bool(self.entry) if self.journal is None else self.journal


class MessagesSpec(_Strict):
    """The engine's own sentences for one locale (`messages.yaml`)."""

    locale: str
    messages: dict[str, list[str]]

    @field_validator("messages", mode="before")
    @classmethod
    def _strings_become_lists(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: [v] if isinstance(v, str) else v for k, v in value.items()}
        return value
