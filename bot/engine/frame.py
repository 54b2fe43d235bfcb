"""One running dialog in a person's conversation, as stored between events."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# A value every dialog can test and quote: how many times this person started the dialog
# before this run (0 the first time), for first-use pacing and a shorter path later on.
EARLIER_RUNS = "earlier_runs"


@dataclass
class Frame:
    """One running dialog in a person's conversation."""

    dialog: str
    state: str
    run: int = 0
    answers: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    entry_id: int | None = None
    # (value, label) choices made in code for the current state (see StateSpec.choices_from).
    options: list[tuple[str, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "dialog": self.dialog,
            "state": self.state,
            "run": self.run,
            "answers": self.answers,
            "params": self.params,
            "entry_id": self.entry_id,
            "options": [list(o) for o in self.options],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Frame:
        return cls(
            dialog=data["dialog"],
            state=data["state"],
            run=data.get("run", 0),
            answers=dict(data.get("answers", {})),
            params=dict(data.get("params", {})),
            entry_id=data.get("entry_id"),
            options=[(str(v), str(label)) for v, label in data.get("options", [])],
        )
