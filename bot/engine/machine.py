"""One `transitions` machine per dialog, built once; users' positions are attached per event.

The machine is built with no model. For each event the runner makes a small `Position`
(state name and answers, loaded from the database), fires the single `next` trigger on it,
and reads the new state back. No machine or model object outlives the event.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from transitions import EventData, Machine

from bot.engine.schema import Condition, DialogSpec

TRIGGER = "next"


@dataclass
class Position:
    """A user's place in one dialog, as the machine sees it while one event is processed."""

    state: str
    answers: dict[str, Any] = field(default_factory=dict)
    choice: str | None = None


@dataclass(frozen=True, slots=True)
class Edge:
    """One possible move, for diagrams."""

    source: str
    dest: str
    label: str


def _chose(value: str) -> Callable[[EventData], bool]:
    def condition(event: EventData) -> bool:
        model: Position = event.model  # type: ignore[assignment]
        return model.choice == value

    return condition


def _holds(condition: Condition) -> Callable[[EventData], bool]:
    def check(event: EventData) -> bool:
        model: Position = event.model  # type: ignore[assignment]
        return condition.holds(model.answers)

    return check


def _describe(condition: Condition) -> str:
    parts = []
    for op, symbol in (("equals", "="), ("gte", ">="), ("lte", "<="), ("gt", ">"), ("lt", "<")):
        value = getattr(condition, op)
        if value is not None:
            parts.append(f"{condition.answer} {symbol} {value}")
    if condition.one_of is not None:
        parts.append(f"{condition.answer} in {list(condition.one_of)}")
    return " and ".join(parts)


class DialogMachine:
    """The compiled form of one dialog file."""

    def __init__(self, spec: DialogSpec) -> None:
        self.spec = spec
        self.edges: list[Edge] = []
        transitions: list[dict[str, Any]] = []
        for name, state in spec.states.items():
            for choice in state.choices:
                if choice.next:
                    transitions.append(
                        {
                            "trigger": TRIGGER,
                            "source": name,
                            "dest": choice.next,
                            "conditions": [_chose(choice.value)],
                        }
                    )
                    self.edges.append(Edge(name, choice.next, choice.label))
            for branch in state.branches():
                entry: dict[str, Any] = {"trigger": TRIGGER, "source": name, "dest": branch.to}
                label = ""
                if branch.when is not None:
                    entry["conditions"] = [_holds(branch.when)]
                    label = _describe(branch.when)
                transitions.append(entry)
                self.edges.append(Edge(name, branch.to, label))
        self.machine = Machine(
            model=None,
            states=list(spec.states),
            transitions=transitions,
            initial=spec.start,
            auto_transitions=False,
            send_event=True,
            model_attribute="state",
        )
        self._event = self.machine.events[TRIGGER] if transitions else None

    def advance(self, position: Position) -> bool:
        """Move `position` along the first transition whose conditions hold."""
        if self._event is None:
            return False
        return bool(self._event.trigger(position))

    def mermaid(self) -> str:
        """A Mermaid state diagram drawn from the machine's own transitions."""
        lines = ["stateDiagram-v2", f"    [*] --> {self.spec.start}"]
        for edge in self.edges:
            label = edge.label.replace(":", " ").replace("\n", " ")
            suffix = f" : {label}" if label else ""
            lines.append(f"    {edge.source} --> {edge.dest}{suffix}")
        for name, state in self.spec.states.items():
            for choice in state.choices:
                if choice.start:
                    lines.append(f"    {name} --> [*] : {choice.label} (starts {choice.start})")
            if state.end:
                suffix = f" : starts {state.start}" if state.start else ""
                lines.append(f"    {name} --> [*]{suffix}")
        # Only states the machine knows are drawn; assert they agree.
        assert set(self.machine.states) == set(self.spec.states)
        return "\n".join(lines) + "\n"
