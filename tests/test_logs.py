"""Logs never hold what a person wrote, at any level, through a whole conversation."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.app import App
from bot.config import REPO_ROOT
from tests.chat import Person

WORDS = [
    "Grandma Philippa's birthday cake collapsed because I am careless",
    "crestfallen",
    "A lopsided cake made with love is still a gift to Philippa.",
    "I rushed the meringue. Rushing happens, and the cake still tasted lovely.",
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


def test_log_format_json_writes_one_object_per_line_without_content(tmp_path: Path) -> None:
    """`LOG_FORMAT=json`, as a log collector reads it: every line an object, no words."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("LOG_", "DATABASE_", "DIALOGS_"))
    }
    env.update(
        DATA_DIR=str(tmp_path / "data"),
        LOG_FORMAT="json",
        SEMANTIC_SCREEN="false",  # so the start logs a warning (and a new key another)
        PYTHONPATH=str(REPO_ROOT),
    )
    said = "/start\n1\n2\n/reframe\n" + WORDS[0] + "\n"
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "chat"],
        input=said,
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    # the one line said to the operator outside the log (the screen is off), and the log
    plain = [line for line in lines if not line.startswith("{")]
    assert len(plain) == 1 and plain[0].startswith("kindbot: WARNING")
    records = [json.loads(line) for line in lines if line.startswith("{")]
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
    assert any("patterns only" in r["message"] for r in records)
    assert any(r["logger"] == "storage.crypto" and r["level"] == "WARNING" for r in records)
    assert "Philippa" not in done.stderr
