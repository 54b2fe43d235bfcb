"""Logs never hold what a person wrote, at any level, through a whole conversation."""

from __future__ import annotations

import logging

import pytest

from bot.app import App
from tests.chat import Person

WORDS = [
    "Grandma Philippa's birthday cake collapsed because I am careless",
    "crestfallen",
    "A lopsided cake made with love is still a gift to Philippa.",
    "I rushed the meringue, and I can be gentle with myself about it.",
    "Nobody at the ukulele club wants me there",
]


async def test_a_whole_conversation_logs_none_of_their_words(
    app: App, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in list(logging.root.manager.loggerDict):
        caplog.set_level(logging.DEBUG, logger=name)
    alice = Person(app)
    await alice.consent()
    await alice.reframe(WORDS[0], feeling=WORDS[1], friend=WORDS[2], kind=WORDS[3])
    await alice.reframe(WORDS[4], feeling=WORDS[1], before=3, after=3)
    await alice.send("/reframe")
    await alice.send(WORDS[4] + " either")
    await alice.send("stop")
    await alice.send("/reframe")
    await alice.press("Continue where I left off")
    await alice.send("/history")
    await alice.press(alice.labels[-2])  # the oldest: the first reframe
    assert WORDS[0] in alice.text  # the entry really was shown
    await alice.send("/progress")
    await alice.send("/export")
    await alice.send("/forget")
    await alice.press("Yes, delete everything")

    assert len(caplog.records) > 50, "DEBUG logging was not captured"
    logged = caplog.text + "\n".join(str(r.args) for r in caplog.records)
    for words in WORDS:
        for part in (words, *[w for w in words.split() if len(w) > 8]):
            assert part not in logged, f"{part!r} appeared in the logs"
