"""How a feature plugs into the engine: one `Feature` value per feature, hooks as data.

Safety, reminders, history, export, … each describe themselves as a `Feature`: the actions
their dialogs name, the slash commands they answer, what they read before a step, and so on.
`bot/app.py` lists them in one table, and `Engine.install` registers them in that order:
hooks that run in a sequence (screens, interceptors, fallbacks) run in the table's order,
and two features claiming one name (an action, a command) is an error, not a silent
override. Screens run before every interceptor whatever the order, so the crisis screen
sees a message before any feature can take it as an answer.

A `Feature` is a value, not a base class to inherit: a feature with state of its own
(safety's loaded patterns and helplines, the reminders' texts) builds its hooks as closures
or bound methods over that state, and the engine sees one shape from every feature.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.engine.events import Event, Location, Output, Reminder, UserRef
from bot.engine.frame import Frame
from bot.engine.turn import Turn

# What a dialog's `action:` runs, on the frame it names.
Action = Callable[[Turn, Frame], Awaitable[None]]
# A slash command answered in code (its words after the name as the second argument).
CommandHandler = Callable[[Turn, str], Awaitable[None]]
# Reads free text before the dialog; True if it took the text (nothing else sees it then).
Interceptor = Callable[[Turn, str], Awaitable[bool]]
# Sees a slash command (name, words) before it runs; True if it took it (the crisis pause
# asks first before another dialog opens over it).
CommandGuard = Callable[[Turn, str, str], Awaitable[bool]]
ReminderHandler = Callable[[Turn, Reminder], Awaitable[None]]
LocationHandler = Callable[[Turn, Location], Awaitable[None]]
# Work for an event done before its step, outside the transaction (the crisis screen runs in a
# worker thread here, so no one waits behind it under a lock); the result is `turn.prepared`.
Preparer = Callable[[UserRef, Event], Awaitable[Any]]
# Makes the outputs a `Later` stands for, after the step (see Engine.produce).
Producer = Callable[[UserRef, dict[str, Any]], Awaitable[list[Output]]]
# Answers for an event whose step could not run (the database is down): crisis help from memory.
Fallback = Callable[[UserRef, Event, dict[str, Any]], list[Output] | None]


@dataclass(frozen=True)
class Feature:
    """Everything one feature adds to the engine; a feature leaves out what it does not use."""

    name: str
    # by the names dialogs use in `action:` and `choices_from:`
    actions: Mapping[str, Action] = field(default_factory=dict)
    # slash commands answered by code rather than by a dialog, by name without the slash
    commands: Mapping[str, CommandHandler] = field(default_factory=dict)
    # crisis screens: before every interceptor, and the only hooks that read edits and captions
    screens: Sequence[Interceptor] = ()
    # free text (and a command's words) in any state, before the dialog takes it as an answer
    interceptors: Sequence[Interceptor] = ()
    # slash commands, before they run (after their words were screened)
    command_guards: Sequence[CommandGuard] = ()
    # by the key their result has in `turn.prepared`
    preparers: Mapping[str, Preparer] = field(default_factory=dict)
    fallbacks: Sequence[Fallback] = ()
    # by the kind of `Later` output they make
    producers: Mapping[str, Producer] = field(default_factory=dict)
    # by reminder kind; a kind without a handler starts the dialog of that name
    reminders: Mapping[str, ReminderHandler] = field(default_factory=dict)
    # a shared location (one feature at most)
    location: LocationHandler | None = None
    # dialogs that close, like the menu, when the person opens another one
    gives_way: frozenset[str] = frozenset()
    # params every start of the named dialog gets (such as thresholds from settings)
    dialog_params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
