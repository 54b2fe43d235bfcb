"""The terminal adapter: the same engine and storage, one line of input per message.

When standard input is not a terminal (a pipe, a file), it reads one input per line and
writes plain output, so a whole conversation can be scripted; end of input exits cleanly
(state was already saved after each step).

In a terminal, long lines wrap at word boundaries to the window's width, and the app's log
lines stay out of the conversation: only warnings reach the screen while chatting (the
key's first-run warning, a failure), never the info lines a server writes.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import sys
import textwrap
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TextIO

from bot.engine.events import (
    ChoiceMade,
    DialogEnded,
    Document,
    Event,
    Image,
    Message,
    Output,
    Pause,
    Text,
    UserRef,
)
from bot.engine.parsing import match_choice
from bot.engine.runner import Engine
from storage.files import private_dir, write_private


class Console:
    """Renders outputs as text; numbered lists for choices; a hint for scales."""

    def __init__(
        self,
        engine: Engine,
        user: str,
        out: TextIO,
        *,
        interactive: bool,
        files: Path | None = None,
        width: int | None = None,
    ) -> None:
        self.engine = engine
        self.files = files
        self.ref = UserRef(channel="console", external_id=user, locale=None)
        self.out = out
        self.interactive = interactive
        self.pending: Message | None = None
        # the last message printed, for one that changes it in place (a paced exercise)
        self.shown: tuple[Message, str] | None = None
        self.sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
        self.width = width  # None: lines are written as they are (a pipe, a file)

    def line(self, text: str, indent: str = "") -> None:
        """Write one output line (see `wrap`)."""
        self.out.write(self.wrap(text, indent))

    def wrap(self, text: str, indent: str = "") -> str:
        """One output line, wrapped at word boundaries when a width is set; blank lines and
        line breaks in the text are kept."""
        if self.width is None:
            return f"{indent}{text}\n"
        rows: list[str] = []
        for part in text.split("\n"):
            wrapped = textwrap.wrap(
                part,
                width=max(20, self.width),
                initial_indent=indent,
                subsequent_indent=" " * len(indent),
                break_long_words=False,
                break_on_hyphens=False,
            )
            rows.append("\n".join(wrapped or [""]))
            indent = " " * len(indent)
        return "\n".join(rows) + "\n"

    def to_event(self, line: str) -> Event:
        """A number or label answers the choices just shown; anything else is text."""
        if self.pending is not None and self.pending.options and not line.startswith("/"):
            value = match_choice(line, self.pending.options)
            if value is not None:
                return ChoiceMade(value, self.pending.step)
        return Text(line)

    async def render(self, outputs: list[Output]) -> None:
        """Show a step's outputs; a `Later` (chart, export) is made first, as Telegram does."""
        for output in await self.engine.produce(self.ref, outputs):
            if isinstance(output, Message):
                text = output.text
                if output.edits and self.shown is not None:
                    text = self.in_place(*self.shown, output)
                block = self.wrap(text, "kindbot: ")
                for index, option in enumerate(output.options, start=1):
                    # a choice no number picks (turning off, going back) is typed in words
                    number = f"{index}." if option.numbered else "- "
                    block += self.wrap(option.label, f"  {number} ")
                if output.scale is not None:
                    block += f"  ({output.scale.low}–{output.scale.high})\n"
                if output.options or output.scale:
                    self.pending = output
                self.out.write(block + "\n")
                self.shown = (output, block + "\n")
            elif isinstance(output, Pause):
                if self.interactive:
                    self.out.flush()
                    await self.sleep(output.seconds)
            elif isinstance(output, Image | Document):
                where = self.save(output) if self.files is not None else output.filename
                self.line(output.caption, "kindbot: ")
                self.out.write(f"  [{where}]\n\n")
            elif isinstance(output, DialogEnded):
                pass
        self.out.flush()

    def in_place(self, before: Message, printed: str, after: Message) -> str:
        """What to print for `after`, a paced message that changes `before` (just printed,
        as `printed`): at a terminal, `printed` is taken back (the cursor goes up over its
        rows and clears them) and `after` is printed whole, so a count changes where it
        stands; in a pipe, only the paragraphs that are new."""
        if not self.interactive:
            old, new = before.text.split("\n\n"), after.text.split("\n\n")
            pairs = enumerate(zip(old, new, strict=False))
            same = next((i for i, (a, b) in pairs if a != b), min(len(old), len(new)))
            return "\n\n".join(new[same:]) or after.text
        columns = max(1, shutil.get_terminal_size().columns)
        lines = printed.removesuffix("\n").split("\n")
        rows = sum(max(1, -(-len(line) // columns)) for line in lines)
        self.out.write(f"\x1b[{rows}F\x1b[J")
        return after.text

    def save(self, output: Image | Document) -> Path:
        """Write a chart or export next to the person (mode 0600 in a folder kindbot makes
        0700: it may hold their words)."""
        assert self.files is not None
        private_dir(self.files)
        path = self.files / Path(output.filename).name
        write_private(path, output.data)
        return path

    async def send(self, line: str) -> None:
        event = self.to_event(line)
        self.pending = None
        await self.render(await self.engine.handle(self.ref, event))

    async def run(self, source: TextIO) -> None:
        if self.interactive:
            self.out.write("kindbot (terminal). Type /help for commands, Ctrl-D to leave.\n\n")
            await self.send("/start")
        loop = asyncio.get_running_loop()
        while True:
            if self.interactive:
                self.out.write("you: ")
                self.out.flush()
                # read in this thread, so Ctrl-C interrupts at once (nothing else runs here)
                line = source.readline()
            else:
                line = await loop.run_in_executor(None, source.readline)
            if not line:
                break
            await self.send(line.rstrip("\r\n"))


def quiet_logs() -> None:
    """Only warnings from the log handlers while a person chats: info lines on the same
    screen read as if the bot said them. Loggers keep their levels, so a handler an
    operator adds (a file) still gets everything."""
    for handler in logging.getLogger().handlers:
        handler.setLevel(max(handler.level, logging.WARNING))


async def chat(engine: Engine, user: str, files: Path | None = None) -> None:
    interactive = sys.stdin.isatty()
    quiet_logs()
    width = shutil.get_terminal_size().columns - 1 if sys.stdout.isatty() else None
    console = Console(engine, user, sys.stdout, interactive=interactive, files=files, width=width)
    await console.run(sys.stdin)
