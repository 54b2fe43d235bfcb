"""A typed number never picks a button that turns something off, deletes, goes back or ends
the safety pause, in any state of any shipped dialog (issue 12, item 3).

The test walks every state that offers choices and types every number at it, reading the
options exactly as the engine builds them (`state_options`) and matching exactly as it does
(`match_choice`). Whether a choice is destructive is decided here, independently of the
dialogs' own `by_number` marks: by what the choice leads to (the actions run on the way, the
end of a crisis pause) and by its value, so a destructive button someone forgets to mark
fails this test.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.app import known_actions
from bot.config import REPO_ROOT
from bot.engine.catalog import Catalog
from bot.engine.events import Option
from bot.engine.parsing import match_choice, named_choice, near_choice, ordinal_choice
from bot.engine.schema import ChoiceSpec, DialogSpec, StateSpec
from bot.engine.turn import state_options

# What a slip of the thumb must never do: turn reminders off or pause them, delete.
DESTRUCTIVE_ACTIONS = frozenset(
    {
        "reminders_target_off",
        "reminders_all_off",
        "reminders_pause_day",
        "reminders_pause_week",
        "forget_everything",
    }
)
# Leaving where one is: going back a level, ending the crisis pause by saying one is safe.
DESTRUCTIVE_VALUES = frozenset({"back", "off", "all_off", "delete", "safe"})


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.load(REPO_ROOT / "dialogs", actions=known_actions())


def _actions_on_the_way(spec: DialogSpec, start: str | None) -> set[str]:
    """Actions run from `start` until the dialog next waits for the person (or ends)."""
    found: set[str] = set()
    todo, seen = [start], set()
    while todo:
        name = todo.pop()
        if name is None or name in seen or name not in spec.states:
            continue
        seen.add(name)
        state = spec.states[name]
        if state.action:
            found.add(state.action)
        if state.expect == "none" and not state.end:
            todo.extend(b.to for b in state.branches())
    return found


def destructive(spec: DialogSpec, choice: ChoiceSpec) -> bool:
    if choice.value in DESTRUCTIVE_VALUES:
        return True
    return bool(_actions_on_the_way(spec, choice.next) & DESTRUCTIVE_ACTIONS)


def choice_states(catalog: Catalog) -> Iterator[tuple[str, str, DialogSpec, StateSpec]]:
    for locale in catalog.locales.values():
        for name, machine in locale.dialogs.items():
            for sname, state in machine.spec.states.items():
                if state.choices:
                    yield locale.code, f"{name}.{sname}", machine.spec, state


def _values(spec: DialogSpec, state: StateSpec) -> dict[str, str]:
    return {p: "x" for p in spec.params}


def offered(
    catalog: Catalog,
) -> Iterator[tuple[str, str, DialogSpec, tuple[Option, ...], dict[str, ChoiceSpec]]]:
    """Every shipped choice state's options as the engine offers them (two made entries
    where code makes them), with its choices by value."""
    for locale, where, spec, state in choice_states(catalog):
        made = [("e1", "an entry"), ("e2", "another")] if state.choices_from else []
        options = state_options(state, _values(spec, state), made)
        yield locale, where, spec, tuple(options), {c.value: c for c in state.choices}


def test_no_typed_number_picks_a_destructive_button(catalog: Catalog) -> None:
    walked = 0
    guarded: set[str] = set()
    for locale, where, spec, state in choice_states(catalog):
        walked += 1
        # a page of entries made in code (history) is offered before the state's own choices
        made = [("e1", "an entry"), ("e2", "another")] if state.choices_from else []
        options = state_options(state, _values(spec, state), made)
        by_value = {c.value: c for c in state.choices}
        for number in range(0, len(options) + 3):
            picked = match_choice(str(number), options)
            if picked is None or picked not in by_value:
                continue
            assert not destructive(spec, by_value[picked]), (
                f"{locale}/{where}: typing {number} picks {picked!r}"
            )
        guarded.update(f"{where}.{c.value}" for c in state.choices if destructive(spec, c))
    assert walked >= 30, walked  # every dialog's choices, not a handful
    # the classifier is not vacuous: the buttons of issue 12 are among those it guards
    assert {
        "reminder_settings.target_menu.off",
        "reminder_settings.target_menu.back",
        "reminder_settings.pause.all_off",
        "forget.ask.delete",
        "crisis.direct.safe",
    } <= guarded, sorted(guarded)


def test_the_walk_fails_on_an_unmarked_destructive_button(catalog: Catalog) -> None:
    """The same walk over the settings' time question with its marks taken off finds "8"
    turning the reminder off: the test above can fail."""
    machine = catalog.dialog("reminder_settings")
    assert machine is not None
    state = machine.spec.states["target_menu"]
    unmarked = state.model_copy(
        update={
            "numbers": True,
            "choices": [c.model_copy(update={"by_number": True}) for c in state.choices],
        }
    )
    options = state_options(unmarked, _values(machine.spec, unmarked))
    by_value = {c.value: c for c in unmarked.choices}
    picked = match_choice("8", options)
    assert picked == "off" and destructive(machine.spec, by_value[picked])


def test_a_time_question_takes_no_number_as_a_button(catalog: Catalog) -> None:
    """At "what time?" a number is an hour: no number picks any of its buttons."""
    machine = catalog.dialog("reminder_settings")
    assert machine is not None
    for sname in ("target_menu", "which_half"):
        state = machine.spec.states[sname]
        options = state_options(state, _values(machine.spec, state))
        assert all(match_choice(str(n), options) is None for n in range(0, 25)), sname


def _slips(label: str) -> Iterator[str]:
    """Typos of `label`: a letter dropped, doubled, changed, or two neighbours swapped
    (letters only: the label itself, spaced or punctuated otherwise, is typed in words)."""
    for i in range(len(label)):
        if not label[i].isalnum():
            continue
        yield label[:i] + label[i + 1 :]
        yield label[:i] + label[i] + label[i:]
        yield label[:i] + "x" + label[i + 1 :]
        if i + 1 < len(label):
            yield label[:i] + label[i + 1] + label[i] + label[i + 2 :]


def test_a_typo_never_picks_a_destructive_button(catalog: Catalog) -> None:
    """A label typed with a slip picks its button only if the button may be picked by number:
    "sundy" picks Sunday, a near miss of "Turn it off" or "I'm safe now" picks nothing."""
    tried = 0
    for locale, where, spec, options, by_value in offered(catalog):
        for option in options:
            for typo in set(_slips(option.label)) - {option.label}:
                tried += 1
                picked = match_choice(typo, options) or near_choice(typo, options)
                if picked is None or picked not in by_value:
                    continue
                assert not destructive(spec, by_value[picked]), (
                    f"{locale}/{where}: typing {typo!r} picks {picked!r}"
                )
    assert tried > 1000, tried


def test_a_typo_picks_the_one_button_it_is_near(catalog: Catalog) -> None:
    machine = catalog.dialog("reminder_settings")
    assert machine is not None
    state = machine.spec.states["weekly_day"]
    options = state_options(state, _values(machine.spec, state))
    sunday = next(o.value for o in options if o.label.lower() == "sunday")
    tuesday = next(o.value for o in options if o.label.lower() == "tuesday")
    assert near_choice("sundy", options) == sunday
    assert near_choice("Tuesdy!", options) == tuesday
    assert near_choice("tuesdya", options) == tuesday
    assert near_choice("teusday", options) is None  # as near Thursday (two edits): not guessed
    assert near_choice("tues", options) is None  # too far: asked again, not guessed
    assert near_choice("xunday", options) == sunday
    saturday = next(o.value for o in options if o.label == "Saturday")
    assert near_choice("Satruday", options) == saturday
    assert match_choice("sundy", options) is None  # only a choice-only question guesses


def test_a_typo_is_not_guessed_where_it_could_be_an_answer() -> None:
    """Times are never near each other ("19:00" is not a slip for "18:00"), short labels
    are not guessed ("dumb" is not "Numb")."""
    times = tuple(Option(t, t) for t in ("08:00", "18:00", "21:00"))
    assert near_choice("19:00", times) is None and near_choice("21:30", times) is None
    feelings = (Option("numb", "Numb"), Option("alone", "Alone"))
    assert near_choice("dumb", feelings) is None
    assert near_choice("alnoe", feelings) == "alone"


def _filler(catalog: Catalog, locale: str = "en") -> list[str]:
    return catalog.locales[locale].message("choice_filler_words").split(",")


def test_a_choice_is_named_by_its_own_words(catalog: Catalog) -> None:
    """ "the breathing one pls" picks "Slow breathing"; a word of the person's own ("not"),
    a word two buttons share ("safe"), a number or a long sentence picks nothing."""
    filler = _filler(catalog)
    grounding = (
        Option("breathe", "Slow breathing"),
        Option("senses", "Noticing my senses (5-4-3-2-1)"),
    )
    assert named_choice("the breathing one pls", grounding, filler) == "breathe"
    assert named_choice("Slow breath", grounding, filler) == "breathe"
    assert named_choice("senses i guess", grounding, filler) == "senses"
    assert named_choice("I'd like the senses one", grounding, filler) == "senses"
    assert named_choice("not breathing", grounding, filler) is None
    assert named_choice("breathing or senses", grounding, filler) is None
    assert named_choice("breathing senses", grounding, filler) is None
    assert named_choice("5", grounding, filler) is None
    assert named_choice("pls", grounding, filler) is None
    assert named_choice("i think slow breathing would help me", grounding, filler) is None
    pause = (
        Option("not_safe", "I'm not safe right now"),
        Option("safe", "I'm safe, continue where I was", numbered=False),
    )
    assert named_choice("safe", pause, filler) is None  # in both labels
    assert named_choice("not safe", pause, filler) is None  # "safe" is in both
    assert named_choice("continue", pause, filler) is None  # never picks an unnumbered one


def test_words_never_pick_a_destructive_button_or_another_buttons_words(catalog: Catalog) -> None:
    """Every word of every label of every shipped choice, typed alone or with filler around
    it, picks that label's button or nothing; with "not" before it too, never a destructive
    one."""
    filler = _filler(catalog)
    tried = 0
    for locale, where, spec, options, by_value in offered(catalog):
        for option in options:
            for word in option.label.split():
                for typed in (word, f"the {word} one pls", f"not {word}"):
                    tried += 1
                    picked = named_choice(typed, options, filler)
                    if picked is None:
                        continue
                    if not typed.startswith("not "):  # "not now" may be a label of its own
                        assert picked == option.value, f"{locale}/{where}: {typed!r} -> {picked!r}"
                    if picked in by_value:
                        assert not destructive(spec, by_value[picked]), (
                            f"{locale}/{where}: typing {typed!r} picks {picked!r}"
                        )
    assert tried > 1000, tried


def test_a_choice_is_named_by_its_place(catalog: Catalog) -> None:
    """ "the second one" is 2, as typed; "one second" and "just a sec" are not; an option a
    number may not pick is not picked by its place either."""
    filler = _filler(catalog)
    ordinals = catalog.locales["en"].message("ordinal_words").split(",")
    three = (Option("a", "Apples"), Option("b", "Pears"), Option("c", "Plums"))
    assert ordinal_choice("the second one", three, ordinals, filler) == "b"
    assert ordinal_choice("first pls", three, ordinals, filler) == "a"
    assert ordinal_choice("I'd like the third one", three, ordinals, filler) == "c"
    assert ordinal_choice("one second", three, ordinals, filler) is None
    assert ordinal_choice("just a second", three, ordinals, filler) is None
    assert ordinal_choice("the fourth one", three, ordinals, filler) is None
    assert ordinal_choice("second thoughts", three, ordinals, filler) is None
    unnumbered = (Option("x", "Keep it"), Option("delete", "Delete it", numbered=False))
    assert ordinal_choice("the second one", unnumbered, ordinals, filler) is None
