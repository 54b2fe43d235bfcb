"""The `kindbot` command as a person or operator runs it: real processes, real files."""

from __future__ import annotations

import io
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bot.app import App, configure_logging
from bot.config import REPO_ROOT
from bot.console import Console, quiet_logs
from storage.crypto import new_key

KINDBOT = [sys.executable, "-m", "bot.cli"]
REFRAME = [
    "/start",
    "1",
    "2",  # Skip the country question
    "1",
    "I always let people down",
    "disappointed",
    "9",
    "1",  # I've noticed it
    "1",  # I see it
    "1",  # Okay
    "1",  # A close friend
    "You are doing your best, and one late reply does not define you.",
    "I am trying my best, and that is enough for today.",
    "4",
    "1",  # Skip this one (the optional last question)
]


def run_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "KINDBOT_"))}
    env.update(
        {
            "DATA_DIR": str(tmp_path / "data"),
            "ENCRYPTION_KEY": new_key(),
            "DIALOGS_DIR": str(REPO_ROOT / "dialogs"),
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def chat(tmp_path: Path, env: dict[str, str], lines: list[str], user: str = "cli") -> str:
    result = subprocess.run(
        [*KINDBOT, "chat", "--user", user],
        input="\n".join(lines) + "\n",
        text=True,
        capture_output=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def test_a_whole_reframe_piped_through_chat(tmp_path: Path) -> None:
    out = chat(tmp_path, run_env(tmp_path), REFRAME)
    assert "  1. Yes, that's okay" in out
    assert "I notice I'm having the thought:\n“I always let people down”" in out
    assert "(0–10)" in out
    assert "9 → 4" in out
    assert "“I am trying my best, and that is enough for today.”" in out
    assert (tmp_path / "data" / "kindbot.db").exists()


def test_labels_numbers_and_end_of_input(tmp_path: Path) -> None:
    env = run_env(tmp_path)
    out = chat(tmp_path, env, ["/start", "Yes, that's okay", "Skip", "work with a harsh thought"])
    assert "What" in out.split("Work with a harsh thought")[-1]
    out = chat(tmp_path, env, ["I am bad at keeping in touch", "/cancel", "/help"])
    assert "saved as unfinished" in out and "/reframe" in out


def test_killed_mid_dialog_resumes_at_the_same_step(tmp_path: Path) -> None:
    env = run_env(tmp_path)
    proc = subprocess.Popen(
        [*KINDBOT, "chat", "--user", "killed"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert proc.stdin and proc.stdout
    for line in REFRAME[:6]:
        proc.stdin.write(line + "\n")
    proc.stdin.flush()
    lines: list[str] = []
    reader = threading.Thread(
        target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True
    )
    reader.start()  # a reply that never comes fails the test instead of hanging it
    deadline = time.monotonic() + 60
    while "(0–10)" not in "".join(lines) and time.monotonic() < deadline:
        time.sleep(0.05)
    seen = "".join(lines)
    proc.send_signal(signal.SIGKILL)
    assert "(0–10)" in seen, seen
    proc.wait(timeout=30)
    for pipe in (proc.stdin, proc.stdout, proc.stderr):
        if pipe:
            pipe.close()
    out = chat(tmp_path, env, ["9"], user="killed")
    assert "turn toward how it feels" in out


def test_dialogs_check_passes_on_the_shipped_dialogs(tmp_path: Path) -> None:
    result = subprocess.run(
        [*KINDBOT, "dialogs", "check"],
        capture_output=True,
        text=True,
        env=run_env(tmp_path),
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("ok:")


def test_dialogs_check_fails_with_file_and_line_on_a_broken_copy(tmp_path: Path) -> None:
    root = tmp_path / "dialogs"
    shutil.copytree(REPO_ROOT / "dialogs", root)
    reframe = root / "en" / "reframe.yaml"
    reframe.write_text(
        reframe.read_text(encoding="utf-8").replace("    next: feeling\n", "    next: feelin\n"),
        encoding="utf-8",
    )
    result = subprocess.run(
        [*KINDBOT, "dialogs", "check", "--dir", str(root)],
        capture_output=True,
        text=True,
        env=run_env(tmp_path),
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    line = next(
        n
        for n, t in enumerate(reframe.read_text().splitlines(), 1)
        if "feelin" in t and "next" in t
    )
    assert (
        f"dialogs/en/reframe.yaml:{line}: state 'thought' goes to unknown state 'feelin'"
        in result.stdout
    )
    assert "state 'feeling' can never be reached" in result.stdout  # every error, not the first


def test_chat_refuses_to_start_on_broken_dialogs(tmp_path: Path) -> None:
    root = tmp_path / "dialogs"
    shutil.copytree(REPO_ROOT / "dialogs", root)
    (root / "en" / "menu.yaml").write_text("dialog: menu\ntitle: x\nstart: a\nstates: {}\n")
    env = run_env(tmp_path) | {"DIALOGS_DIR": str(root)}
    result = subprocess.run(
        [*KINDBOT, "chat"],
        input="",
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "dialogs/en/menu.yaml" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("name", ["reframe", "onboarding"])
def test_dialogs_graph_prints_mermaid(tmp_path: Path, name: str) -> None:
    result = subprocess.run(
        [*KINDBOT, "dialogs", "graph", name],
        capture_output=True,
        text=True,
        env=run_env(tmp_path),
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0
    assert result.stdout.startswith("stateDiagram-v2\n")
    assert "-->" in result.stdout


def test_doctor_after_a_first_chat_is_all_ok(tmp_path: Path) -> None:
    env = run_env(tmp_path)
    chat(tmp_path, env, ["/start"])
    result = subprocess.run(
        [*KINDBOT, "doctor"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines and all(line.startswith("ok ") for line in lines), result.stdout
    assert "ok       key check: ENCRYPTION_KEY reads the database" in lines


async def test_terminal_wraps_at_word_boundaries(app: App) -> None:
    out = io.StringIO()
    console = Console(app.engine, "narrow", out, interactive=False, width=40)
    await console.send("/start")
    lines = out.getvalue().splitlines()
    assert lines and all(len(line) <= 40 for line in lines)
    words = " ".join(out.getvalue().split())
    # nothing cut inside a word: the welcome reads whole once the lines are joined again
    assert "harsher with ourselves than we would ever be with a friend" in words
    assert "  1. Yes, that's okay" in lines
    # a wrapped message continues under its text, not under "kindbot:"
    assert any(line.startswith(" " * len("kindbot: ") + "Many of us") for line in lines)


async def test_terminal_asks_for_a_number_not_a_tap(app: App) -> None:
    out = io.StringIO()
    console = Console(app.engine, "typist", out, interactive=False)
    await console.send("/start")
    await console.send("maybe later perhaps")
    assert "typing its number works too" in out.getvalue()
    assert "tap" not in out.getvalue().casefold()


def test_chat_keeps_info_log_lines_off_the_screen(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    try:
        root.handlers.clear()
        configure_logging("INFO")
        quiet_logs()
        logging.getLogger("kindbot.test").info("an info line")
        logging.getLogger("kindbot.test").warning("a warning line")
    finally:
        root.handlers[:] = saved[1]
        root.setLevel(saved[0])
    err = capsys.readouterr().err
    assert "a warning line" in err
    assert "an info line" not in err
