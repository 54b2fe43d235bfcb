"""The terminal adapter: the same engine and storage, one line of input per message.

When standard input is not a terminal (a pipe, a file), it reads one input per line and
writes plain output, so a whole conversation can be scripted; end of input exits cleanly
(state was already saved after each step).
"""

from __future__ import annotations

import asyncio
import shutil
import sys
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
                block = f"kindbot: {text}\n"
                for index, option in enumerate(output.options, start=1):
                    # a choice no number picks (turning off, going back) is typed in words
                    number = f"{index}." if option.numbered else "- "
                    block += f"  {number} {option.label}\n"
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
                self.out.write(f"kindbot: {output.caption}\n  [{where}]\n\n")
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


async def chat(engine: Engine, user: str, files: Path | None = None) -> None:
    console = Console(engine, user, sys.stdout, interactive=sys.stdin.isatty(), files=files)
    await console.run(sys.stdin)
