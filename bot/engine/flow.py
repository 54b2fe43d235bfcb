"""Flow control: where a conversation goes after an answer, and what it shows on the way.

`Flow` holds the rules every dialog move follows (the dialogs, the actions they name, the
onboarding, menu and resume dialogs) and the moves themselves: answer the current question,
enter the state just reached (running through states that wait for nothing), carry on after
a called dialog ends, open a dialog on request. Features move a conversation through these
(`turn.engine.answer`, `.jump`, `.open_dialog`) and the turn's own `start_dialog`, `resume`
and `stop_all`, so every move counts a step and shows its prompt the same way.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from bot.engine.catalog import Catalog
from bot.engine.events import Message, Pause
from bot.engine.feature import Action
from bot.engine.frame import Frame
from bot.engine.machine import Position
from bot.engine.turn import Turn

# States that wait for nothing, entered one after another, before something is wrong.
MAX_AUTO_STEPS = 100


class Flow:
    """The dialog rules and moves; the `Engine` adds events, transactions and features."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.onboarding = "onboarding"
        self.menu = "menu"
        self.resume_dialog = "resume"
        # Where a first message with real words goes once the person has agreed to storage.
        self.first_words = "reframe"
        # Offers that: words with nothing open, from a person who has agreed to storage.
        self.heard = "heard"
        # Offered when a person writes into a recorded dialog left open for `gap` or longer:
        # carry on, or start with what's on their mind now (see Router._after_gap).
        self.returning = "returning"
        self.gap = timedelta(hours=3)
        # Dialogs that step aside (are closed) when the person opens another one, like the menu.
        self.gives_way: set[str] = set()
        self.actions: dict[str, Action] = {}
        # Params every start of a dialog gets (such as thresholds from settings).
        self.dialog_params: dict[str, dict[str, Any]] = {}

    async def open_dialog(self, turn: Turn, dialog: str, text: str = "") -> None:
        """Start a dialog on request: resume offer, already-here, or on top of the current.
        `text` (what followed the command, "/reframe I'm a failure", or first words carried
        through the consent question) answers its first question, here or after the resume
        offer's "start fresh"."""
        machine = self.catalog.dialog(dialog, turn.locale.code)
        needs_consent = turn.needs_consent(dialog)
        top = turn.top
        if top and top.dialog == self.onboarding and turn.declined:
            self.step_aside(turn)  # their answer was "Not now": whatever they open now
            top = turn.top
        if top and top.dialog == self.onboarding and not turn.consented and needs_consent:
            turn.say("consent_first")
            turn.reprompt()
            return
        self.step_aside(turn)  # a menu or offer on top gives way first
        top = turn.top
        if top and top.dialog == dialog and not await self._set_aside(turn, top):
            turn.say("already_here")
            turn.reprompt()
            return
        await self._restart_moment(turn, dialog)
        if dialog in turn.paused and turn.consented:
            title = machine.spec.title if machine else dialog
            params = {"target": dialog, "title": title, "text": text}
            await turn.start_dialog(self.resume_dialog, params)
            return
        await self.start_with(turn, dialog, text)

    async def start_with(self, turn: Turn, dialog: str, text: str = "") -> None:
        """Start `dialog`; `text` (written with its command) answers its first question, and
        once it has, that question is not shown as well."""
        mark = len(turn.outputs)
        await turn.start_dialog(dialog)
        frame = turn.top
        if text and frame is not None and frame.dialog == self.onboarding:
            # it waits for the okay to storage: the words go with it, to be used after "Yes"
            # (and dropped after "Not now")
            frame.params.setdefault("thought", text)
            return
        if not text or frame is None or frame.dialog != dialog:
            return
        asked, shown = frame.state, len(turn.outputs)
        await self.take_text(turn, text)
        if turn.top is not frame or frame.state != asked:
            # only the question goes: a note before it (a first-use note) still stands
            said = [i for i in range(mark, shown) if isinstance(turn.outputs[i], Message)]
            if said:
                del turn.outputs[said[-1]]

    async def take_text(self, turn: Turn, text: str) -> None:
        """Answer the question just asked with words the person already wrote (after a
        command). The router reads them as if they were typed now."""
        raise NotImplementedError  # the Router implements it

    async def _restart_moment(self, turn: Turn, dialog: str) -> None:
        """A dialog about the moment (the check-in) asked for while it runs below another
        (its breathing exercise) is closed with what is above it: it starts fresh."""
        machine = self.catalog.dialog(dialog, turn.locale.code)
        if machine is None or machine.spec.resumable:
            return
        below = next((f for f in turn.stack if f.dialog == dialog), None)
        if below is not None:
            await turn.stop_through(below)

    async def _set_aside(self, turn: Turn, frame: Frame) -> bool:
        """Asked for the dialog already on top: a recorded one with answers is set aside as
        unfinished, so the resume offer asks continue-or-fresh; one about the moment
        (`resumable: false`) is closed as it stands, so it starts fresh. False: neither."""
        if not turn.machine(frame).spec.resumable:
            await turn.stop_through(frame)
            return True
        if frame.entry_id is None or not frame.answers:
            return False
        await turn.stop_through(frame)
        return frame.dialog in turn.paused

    async def hear(self, turn: Turn, text: str) -> bool:
        """`text`, someone telling how they are where something else was asked (the menu, a
        list, `/country`), heard: the `heard` dialog with their words, which offers to look at
        them together. False when the dialogs have no `heard`."""
        if self.catalog.dialog(self.heard) is None:
            return False
        self.step_aside(turn)
        await turn.start_dialog(self.heard, {"thought": text})
        return True

    def step_aside(self, turn: Turn) -> None:
        """Close a menu-like dialog on top (menu, resume offer, history) for what comes next."""
        top = turn.top
        offers = (self.menu, self.resume_dialog, self.returning, self.heard)
        if top and (top.dialog in offers or top.dialog in self.gives_way):
            turn.stack.pop()
        elif top and top.dialog == self.onboarding and turn.declined:
            turn.stack.pop()  # the "Not now" offer (nothing in it to keep)

    async def answer(self, turn: Turn, value: str | int) -> None:
        """Store the answer to the current state and move on."""
        frame = turn.top
        assert frame is not None
        state = turn.spec(frame)
        if state.store:
            frame.answers[state.store] = value
        if state.expect == "choice":
            choice = next((c for c in state.choices if c.value == value), None)
            if choice is not None and choice.start:
                await turn.finish_top()
                await self.open_dialog(turn, choice.start)
                return
        self._advance(turn, frame, value if isinstance(value, str) else None)
        await self.enter(turn)

    async def jump(self, turn: Turn, frame: Frame, state: str) -> None:
        """Move the frame to `state` without an answer (a feature read the text another way,
        or a crisis pause starts over) and show it."""
        frame.state = state
        turn.step += 1
        await self.enter(turn)

    async def enter(self, turn: Turn) -> None:
        """Show the state just entered; run through states that wait for nothing."""
        for _ in range(MAX_AUTO_STEPS):
            frame = turn.top
            if frame is None:
                return
            state = turn.spec(frame)
            frame.answers.update(state.record)
            if state.choices_from:
                await self.actions[state.choices_from](turn, frame)
            if state.say:
                turn.emit(turn.joined(turn.render(frame), state.join))
                turn.prompts += 1
            if state.pause:
                turn.emit(Pause(state.pause))
            if state.end:
                await turn.finish_top()
                before = turn.prompts
                if state.action:
                    await self.actions[state.action](turn, frame)
                if state.start:
                    await self.open_dialog(turn, state.start)
                below = turn.top
                if turn.prompts == before and below is not None:
                    if turn.spec(below).call:
                        await self.carry_on(turn)
                    else:
                        turn.say("back_to_previous")
                        turn.reprompt()
                return
            if state.action:
                await self.actions[state.action](turn, frame)
                if turn.top is not frame:
                    return
            if state.call:
                await turn.start_dialog(state.call)
                if turn.top is not frame:
                    return
            if state.expect != "none":
                return
            self._advance(turn, frame)
        raise RuntimeError("too many steps without waiting for the person")

    async def carry_on(self, turn: Turn) -> None:
        """The top frame waited at a `call` state for a dialog that has ended: move on."""
        frame = turn.top
        assert frame is not None
        self._advance(turn, frame)
        await self.enter(turn)

    def _advance(self, turn: Turn, frame: Frame, choice: str | None = None) -> None:
        """Fire the frame's machine from its state (with the choice made, if any) and count
        the step; a dialog with no way on from here is a bug the validator should have caught."""
        position = Position(frame.state, turn.values(frame), choice=choice)
        if not turn.machine(frame).advance(position):
            raise RuntimeError(f"no transition from {frame.dialog}.{frame.state}")
        frame.state = position.state
        turn.step += 1
