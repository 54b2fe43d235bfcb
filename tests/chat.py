"""A small driver for engine tests written in Python: a person who types and presses buttons."""

from __future__ import annotations

from bot.app import App
from bot.engine.events import ChoiceMade, Document, Image, Message, Output, Text, UserRef


class Person:
    """Talks to the engine as one person; remembers the latest reply and its buttons."""

    def __init__(self, app: App, user: str = "alice", channel: str = "console") -> None:
        self.app = app
        self.ref = UserRef(channel, user)
        self.reply: list[Output] = []
        self.offer: Message | None = None

    async def send(self, text: str) -> list[Output]:
        return await self._handle(Text(text))

    async def press(self, label: str) -> list[Output]:
        assert self.offer is not None, "no buttons were offered"
        for option in self.offer.options:
            if option.label == label:
                return await self._handle(ChoiceMade(option.value, self.offer.step))
        raise AssertionError(f"no button {label!r} in {self.labels}")

    async def _handle(self, event: Text | ChoiceMade) -> list[Output]:
        self.reply = await self.app.engine.handle(self.ref, event)
        offers = [m for m in self.reply if isinstance(m, Message) and m.options]
        if offers:
            self.offer = offers[-1]
        return self.reply

    @property
    def texts(self) -> list[str]:
        return [m.text for m in self.reply if isinstance(m, Message)]

    @property
    def text(self) -> str:
        return "\n".join(self.texts)

    @property
    def labels(self) -> list[str]:
        return [o.label for o in self.offer.options] if self.offer else []

    @property
    def files(self) -> list[Image | Document]:
        return [o for o in self.reply if isinstance(o, Image | Document)]

    async def consent(self) -> None:
        await self.send("/start")
        await self.press("Yes, that's okay")
        await self.press("Skip")  # the country question
        await self.press("Nothing right now")

    async def reframe(
        self,
        thought: str,
        *,
        feeling: str = "sad",
        before: int = 8,
        friend: str = "You are doing your best.",
        kind: str = "I am learning, and that is okay.",
        after: int = 5,
    ) -> None:
        await self.send("/reframe")
        await self.send(thought)
        await self.send(feeling)
        await self.send(str(before))
        if "The whole walk-through" in self.labels:  # offered from the sixth reframe on
            await self.press("The whole walk-through")
        await self.press("I've noticed it")
        await self.press("I see it")
        await self.press("Okay")
        await self.press("A close friend")
        await self.send(friend)
        await self.send(kind)
        await self.send(str(after))
        if "Skip this one" in self.labels:  # the optional last question
            await self.press("Skip this one")
        assert thought in self.text, self.texts
