"""The terminal shows a paced exercise in place: at a terminal the counts are rewritten where
they stand; in a pipe each new line is printed once, without the text before it again."""

from __future__ import annotations

import io

import pytest

from bot.app import App
from bot.console import Console

INTRO = "Let's breathe slowly together"


async def test_piped_breathing_prints_each_count_once(app: App) -> None:
    out = io.StringIO()
    console = Console(app.engine, "piped", out, interactive=False)
    await console.send("/breathe")
    printed = out.getvalue()
    assert printed.count(INTRO) == 1
    for count in ("Breathe in slowly", "…and out, slowly", "Once more. In", "And out…"):
        assert printed.count(count) == 1, count
    assert "\x1b" not in printed and "\r" not in printed


async def test_at_a_terminal_the_counts_are_rewritten_in_place(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    out = io.StringIO()
    console = Console(app.engine, "tty", out, interactive=True)
    waited: list[float] = []

    async def sleep(seconds: float) -> None:
        waited.append(seconds)

    console.sleep = sleep
    await console.send("/breathe")
    printed = out.getvalue()
    assert waited == [3, 4, 6, 4, 6, 4, 3]
    # six times the cursor goes back over the message (intro, count, blank line) and clears it
    assert printed.count("\x1b[J") == 6
    # back over exactly what was printed: the intro (four rows at 80 columns) and its blank
    # line; then that, a blank line and the count
    assert [part[-3:] for part in printed.split("\x1b[J")[:-1]] == ["[5F"] + ["[7F"] * 5
    screens = printed.split("\x1b[J")
    assert "Breathe in slowly" in screens[1] and "and out" not in screens[1]
    assert INTRO in screens[-1] and "And out" in screens[-1] and "few more breaths" in screens[-1]
