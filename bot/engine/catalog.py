"""Loading and validating every dialog and message file, per locale.

Errors name the file and line, and all of them are collected (not just the first), so
`kindbot dialogs check` shows a writer everything to fix in one go.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from bot.engine.frame import EARLIER_RUNS
from bot.engine.machine import DialogMachine
from bot.engine.schema import DialogSpec, MessagesSpec
from bot.engine.texts import REQUIRED_MESSAGES, pick, placeholders
from bot.engine.yamlsource import LineDict, SourceError, line_of, load_yaml

LOCALE_FOLDER = re.compile(r"^[a-z]{2,3}(?:[-_][A-Za-z]{2,4})?$")


class DialogsInvalid(Exception):
    """Raised at start-up when the content does not validate."""

    def __init__(self, errors: list[SourceError]) -> None:
        super().__init__("\n".join(str(e) for e in errors))
        self.errors = errors


@dataclass
class Locale:
    """Every dialog and message of one language."""

    code: str
    dialogs: dict[str, DialogMachine] = field(default_factory=dict)
    messages: dict[str, list[str]] = field(default_factory=dict)

    def message(self, key: str, *, run: int = 0) -> str:
        return pick(self.messages.get(key, [key]), run=run, salt=key)


@dataclass
class Catalog:
    """All locales; the default locale is complete, others fall back to it per dialog."""

    default: str
    locales: dict[str, Locale]

    def locale(self, code: str | None) -> Locale:
        if code:
            base = code.split("-")[0].split("_")[0].lower()
            if base in self.locales:
                return self.locales[base]
        return self.locales[self.default]

    def dialog(self, name: str, locale: str | None = None) -> DialogMachine | None:
        found = self.locale(locale).dialogs.get(name)
        return found or self.locales[self.default].dialogs.get(name)

    def command_dialogs(self, locale: str | None = None) -> dict[str, str]:
        """Command name → dialog name, for dialogs started by a command."""
        return {
            m.spec.command: name
            for name, m in self.locales[self.default].dialogs.items()
            if m.spec.command
        }

    @classmethod
    def load(cls, root: Path, *, default: str = "en", actions: Iterable[str] = ()) -> Catalog:
        errors, catalog = validate_tree(root, default=default, actions=actions)
        if errors or catalog is None:
            raise DialogsInvalid(errors)
        return catalog


def _pydantic_errors(exc: ValidationError, raw: Any, name: str) -> list[SourceError]:
    out = []
    for err in exc.errors():
        loc = [p for p in err["loc"] if not (isinstance(p, str) and "[" in p)]
        where = ".".join(str(p) for p in loc) or "(top level)"
        out.append(SourceError(name, line_of(raw, loc), f"{where}: {err['msg']}"))
    return out


def _check_recorded(spec: DialogSpec, err: Callable[[list[Any], str], None]) -> None:
    """Every fixed answer a kept dialog records has words for its name and each value (they
    are shown in /history); and words are given only for what is recorded."""
    recorded: dict[str, set[str]] = {}
    for sname, state in spec.states.items():
        for key, value in state.record.items():
            recorded.setdefault(key, set()).add(value)
            words = spec.recorded.get(key)
            if spec.entry and words is None:
                err(
                    ["states", sname, "record"],
                    f"state {sname!r} records {key!r}: give it words under `recorded:`",
                )
            elif spec.entry and words is not None and value not in words.values:
                err(
                    ["recorded", key],
                    f"recorded {key!r} has no words for the value {value!r} (state {sname!r})",
                )
    for key, words in spec.recorded.items():
        if key not in recorded:
            err(["recorded", key], f"recorded {key!r}: no state records it")
            continue
        for value in words.values:
            if value not in recorded[key]:
                err(
                    ["recorded", key, "values", value],
                    f"recorded {key!r}: no state records the value {value!r}",
                )


def _check_dialog(
    spec: DialogSpec, raw: LineDict, name: str, known_dialogs: set[str], actions: set[str]
) -> list[SourceError]:
    errors: list[SourceError] = []

    def err(path: list[Any], message: str) -> None:
        errors.append(SourceError(name, line_of(raw, path), message))

    states = spec.states
    if spec.start not in states:
        err(["start"], f"start state {spec.start!r} is not defined")
    stored = {s.store for s in states.values() if s.store}
    stored |= {key for s in states.values() for key in s.record}
    variables = stored | set(spec.params) | set(spec.derived) | {EARLIER_RUNS}
    for dname, derived in spec.derived.items():
        for ref in derived.difference:
            if ref not in stored | set(spec.params):
                err(
                    ["derived", dname],
                    f"derived {dname!r} uses {ref!r}, which is no param and no state stores",
                )

    _check_recorded(spec, err)
    for i, kept in enumerate(spec.remembered):
        if not spec.entry:
            err(["remembered", i], f"remembered {kept!r}: only a dialog kept as an entry remembers")
        if kept not in {s.store for s in states.values()}:
            err(
                ["remembered", i],
                f"remembered {kept!r}: no state stores it (the person must be able to write it)",
            )

    for sname, state in states.items():
        base = ["states", sname]

        def check_target(target: str, path: list[Any], sname: str = sname) -> None:
            if target not in states:
                err(path, f"state {sname!r} goes to unknown state {target!r}")

        def check_dialog(target: str, path: list[Any], sname: str = sname) -> None:
            if target not in known_dialogs:
                err(path, f"state {sname!r} starts unknown dialog {target!r}")

        for i, branch in enumerate(state.branches()):
            path = [*base, "next"] if isinstance(state.next, str) else [*base, "next", i]
            check_target(branch.to, path)
        if isinstance(state.next, list):
            if not state.next or state.next[-1].when is not None:
                err(
                    [*base, "next"],
                    f"state {sname!r}: the last branch needs no 'when' "
                    "(a default), or a person could be stuck",
                )
            for i, branch in enumerate(state.next[:-1]):
                if branch.when is None:
                    err(
                        [*base, "next", i],
                        f"state {sname!r}: a branch without 'when' "
                        "must come last (later branches could never be taken)",
                    )
            for i, branch in enumerate(state.next):
                if branch.when and branch.when.answer not in variables | {"choice"}:
                    err(
                        [*base, "next", i, "when"],
                        f"state {sname!r}: condition on unknown answer {branch.when.answer!r}",
                    )
        for i, choice in enumerate(state.choices):
            if choice.next:
                check_target(choice.next, [*base, "choices", i, "next"])
            if choice.start:
                check_dialog(choice.start, [*base, "choices", i, "start"])
            if choice.next and choice.start:
                err([*base, "choices", i], f"choice {choice.value!r}: use next or start, not both")
        if state.start:
            check_dialog(state.start, [*base, "start"])
        if state.typed:
            check_target(state.typed, [*base, "typed"])
            taker = states.get(state.typed)
            if state.expect != "choice" or (taker is not None and taker.expect != "text"):
                err(
                    [*base, "typed"],
                    f"state {sname!r}: 'typed' is for a choice, and names a text question",
                )
        if state.call:
            check_dialog(state.call, [*base, "call"])
            if state.expect != "none" or state.end or state.next is None:
                err(
                    [*base, "call"],
                    f"state {sname!r}: a state that calls a dialog expects nothing, "
                    "is no end state, and needs a next (where to carry on afterwards)",
                )
        if state.choices_from is not None:
            if state.choices_from not in actions:
                err(
                    [*base, "choices_from"],
                    f"state {sname!r}: unknown action {state.choices_from!r} "
                    f"(known: {', '.join(sorted(actions)) or 'none'})",
                )
            if state.expect != "choice":
                err([*base, "choices_from"], f"state {sname!r}: choices_from needs expect: choice")
            if state.next is None:
                err(
                    [*base, "choices_from"],
                    f"state {sname!r}: choices made in code need a next to go to",
                )
        if state.label is not None and not state.store:
            err([*base, "label"], f"state {sname!r}: a label names a stored answer; none is stored")
        if state.action and state.action not in actions:
            err(
                [*base, "action"],
                f"state {sname!r}: unknown action {state.action!r} "
                f"(known: {', '.join(sorted(actions)) or 'none'})",
            )

        # Expectations and ways out.
        if state.expect == "choice":
            if not state.choices and state.choices_from is None:
                err(base, f"state {sname!r} expects a choice but offers no choices")
            values = [c.value for c in state.choices]
            for dup in {v for v in values if values.count(v) > 1}:
                err([*base, "choices"], f"state {sname!r}: choice value {dup!r} appears twice")
        elif state.choices and state.expect == "text":
            # Under a text question a button opens a dialog on top (start), goes round the
            # question storing nothing (next), or, with neither, answers with its label. Only
            # a way round may have aliases ("no thanks" skipping an optional question): typed
            # words are otherwise the answer.
            for i, choice in enumerate(state.choices):
                if choice.aliases and not (choice.next or choice.start):
                    err(
                        [*base, "choices", i, "aliases"],
                        f"state {sname!r}: a ready answer under a text question takes no "
                        "aliases (typed words are the answer; a skip or a shortcut may)",
                    )
        elif state.choices and state.expect == "scale":
            # Under a scale a button is a way round the question ("Skip"): it goes on (next)
            # storing nothing; a typed number is always a rating there.
            for i, choice in enumerate(state.choices):
                if not choice.next or choice.start:
                    err(
                        [*base, "choices", i],
                        f"state {sname!r}: a button under a scale goes round it: "
                        "give it a next (and no start)",
                    )
        elif state.choices:
            err([*base, "choices"], f"state {sname!r} has choices but expects {state.expect!r}")
        if state.expect == "none" and state.store:
            err([*base, "store"], f"state {sname!r} stores an answer but expects none")
        if state.end:
            if state.next is not None or any(c.next or c.start for c in state.choices):
                err(base, f"state {sname!r} is an end state but also goes somewhere")
            if state.expect != "none":
                err([*base, "expect"], f"end state {sname!r} cannot wait for an answer")
        else:
            if state.start:
                err([*base, "start"], f"state {sname!r}: 'start' is only for end states")
            if state.expect == "choice":
                if state.next is None and not all(c.next or c.start for c in state.choices):
                    err(
                        base,
                        f"state {sname!r} has no way out: give every choice a next "
                        "(or start), or give the state a next",
                    )
            elif state.next is None:
                err(base, f"state {sname!r} has no way out: give it a next, or end: true")

        # Texts.
        router = state.expect == "none" and isinstance(state.next, list)
        if not state.say and not state.action and not state.call and not router:
            err(base, f"state {sname!r} has no text to say (missing 'say')")
        for key in ("say", "retry"):
            for i, text in enumerate(getattr(state, key)):
                if not text.strip():
                    err([*base, key, i], f"state {sname!r}: empty text")
                _check_template(text, variables, [*base, key, i], err)
        if state.retry and state.expect not in ("choice", "scale"):
            err([*base, "retry"], f"state {sname!r}: 'retry' is only for choice or scale states")
        for i, choice in enumerate(state.choices):
            _check_template(choice.label, variables, [*base, "choices", i, "label"], err)

    # Reachability from the start state.
    if spec.start in states:
        seen = {spec.start}
        todo = deque([spec.start])
        while todo:
            current = states[todo.popleft()]
            targets = [b.to for b in current.branches()] + [c.next for c in current.choices]
            for target in targets:
                if target and target in states and target not in seen:
                    seen.add(target)
                    todo.append(target)
        for sname in states:
            if sname not in seen:
                err(["states", sname], f"state {sname!r} can never be reached from {spec.start!r}")
    return errors


def _check_template(text: str, variables: set[str], path: list[Any], err: Any) -> None:
    try:
        names = placeholders(text)
    except ValueError as exc:
        err(path, f"bad placeholder: {exc}")
        return
    for var in names:
        if var not in variables:
            err(
                path,
                f"unknown template variable {{{var}}} (known: "
                f"{', '.join(sorted(variables)) or 'none'})",
            )


def validate_tree(
    root: Path, *, default: str = "en", actions: Iterable[str] = ()
) -> tuple[list[SourceError], Catalog | None]:
    """Validate every locale folder under `root`; build the catalog if there are no errors."""
    errors: list[SourceError] = []
    action_set = set(actions)
    locales: dict[str, Locale] = {}
    if not (root / default).is_dir():
        return [SourceError(str(root), 0, f"no folder for the default locale {default!r}")], None

    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        code = folder.name
        if not LOCALE_FOLDER.match(code):
            continue  # not a language: data such as dialogs/helplines/ has its own loader
        specs: dict[str, tuple[DialogSpec, LineDict, str]] = {}
        messages: dict[str, list[str]] | None = None
        for path in sorted(folder.glob("*.yaml")):
            name = _display(path, root)
            raw, load_errors = load_yaml(path, name)
            errors.extend(load_errors)
            if load_errors:
                continue
            if not isinstance(raw, LineDict):
                errors.append(SourceError(name, 1, "expected a mapping at the top level"))
                continue
            if "dialog" in raw:
                try:
                    spec = DialogSpec.model_validate(raw)
                except ValidationError as exc:
                    errors.extend(_pydantic_errors(exc, raw, name))
                    continue
                if spec.dialog != path.stem:
                    errors.append(
                        SourceError(
                            name,
                            line_of(raw, ["dialog"]),
                            f"dialog {spec.dialog!r} must live in {spec.dialog}.yaml",
                        )
                    )
                    continue
                specs[spec.dialog] = (spec, raw, name)
            elif "messages" in raw:
                try:
                    msg = MessagesSpec.model_validate(raw)
                except ValidationError as exc:
                    errors.extend(_pydantic_errors(exc, raw, name))
                    continue
                messages = msg.messages
                missing = sorted(REQUIRED_MESSAGES - set(messages))
                if missing:
                    errors.append(
                        SourceError(
                            name,
                            line_of(raw, ["messages"]),
                            f"missing text for: {', '.join(missing)}",
                        )
                    )
                for key, texts in messages.items():
                    if not texts or any(not t.strip() for t in texts):
                        errors.append(
                            SourceError(
                                name,
                                line_of(raw, ["messages", key]),
                                f"message {key!r} has an empty text",
                            )
                        )
            # other files (patterns, helplines, …) belong to their own loaders
        if messages is None:
            errors.append(
                SourceError(
                    _display(folder, root), 0, "missing messages.yaml (the engine's own texts)"
                )
            )
        known = set(specs) | (set(locales[default].dialogs) if default in locales else set())
        commands: dict[str, str] = {}
        locale = Locale(code=code, messages=messages or {})
        for dname, (spec, raw, name) in specs.items():
            dialog_errors = _check_dialog(spec, raw, name, known, action_set)
            if spec.command:
                if spec.command in commands:
                    dialog_errors.append(
                        SourceError(
                            name,
                            line_of(raw, ["command"]),
                            f"command /{spec.command} is already used "
                            f"by {commands[spec.command]!r}",
                        )
                    )
                commands[spec.command] = dname
            errors.extend(dialog_errors)
            if not dialog_errors:
                locale.dialogs[dname] = DialogMachine(spec)
        locales[code] = locale

    for code, locale in locales.items():
        if code == default:
            continue
        base = locales.get(default)
        if base:
            where = _display(root / code, root)
            for key in sorted(set(base.messages) - set(locale.messages)):
                errors.append(SourceError(where, 0, f"missing text for {key!r} in locale {code}"))
    if errors:
        return errors, None
    return [], Catalog(default=default, locales=locales)


def _display(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root.parent))
    except ValueError:
        return str(path)
