"""Idle memory of `kindbot run` against a bare PTB echo bot, each in a process of its own.

Both are started on a fake Bot API served over loopback HTTP (bench/http.py's `Bot`), left
idle for a few seconds after start, and measured by their resident set (VmRSS in
/proc/<pid>/status). kindbot runs in polling mode on a current SQLite database (migrated first
by `kindbot migrate`, so Alembic is not loaded), with the crisis-screen model off: the issue's
target (≤ 75 MiB) leaves the model out, and the model's own share is printed apart (the same
bot with SEMANTIC_SCREEN on). A third process, the echo bot with the stack's libraries imported
and never used (`STACK`), shows the floor the stack itself sets: measured 2026-12-02, echo
52.0 MiB, echo + the stack's libraries 81.6 MiB, kindbot 96.0 MiB. The target is below that
floor: it cannot be met on this stack (import-only, without SQLModel: async SQLAlchemy,
pydantic-settings and aiosqlite on top of PTB already take 76 MiB).

Run: .venv/bin/python -m bench.memory [--idle 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench.http import Bot

TARGET_MIB = 75.0
# The libraries the project's stack fixes for a running bot (async SQLAlchemy through SQLModel,
# pydantic-settings, the SQLite driver), imported by the echo bot and never used: the floor any
# kindbot on this stack starts from, before a line of its own code.
STACK = "sqlmodel,sqlalchemy.ext.asyncio,pydantic_settings,aiosqlite"


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def idle_rss(bot: Bot, idle: float) -> float:
    with bot.running() as running:
        time.sleep(idle)
        assert running.process is not None
        return rss_mib(running.process.pid)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--idle", type=float, default=3.0, help="seconds idle before measuring")
    parser.add_argument("--quick", action="store_true", help="no model run (the smoke test)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        echo = idle_rss(Bot("echo", kindbot=False, webhook=False, folder=folder / "e"), args.idle)
        floor = idle_rss(
            Bot(
                "echo-stack",
                kindbot=False,
                webhook=False,
                folder=folder / "s",
                extra_env={"ECHO_IMPORTS": STACK},
            ),
            args.idle,
        )
        kindbot = idle_rss(
            Bot("kindbot", kindbot=True, webhook=False, folder=folder / "k"), args.idle
        )
        print(f"idle RSS, bare PTB echo bot:           {echo:6.1f} MiB")
        print(
            f"idle RSS, echo bot + the stack's libs: {floor:6.1f} MiB "
            f"(imported, unused: {STACK.replace(',', ', ')})"
        )
        print(
            f"idle RSS, kindbot run (model off):     {kindbot:6.1f} MiB "
            f"({kindbot / echo:.2f}x echo; target <= {TARGET_MIB:.0f} MiB)"
        )
        if not args.quick:
            with_model = idle_rss(
                Bot(
                    "kindbot-model",
                    kindbot=True,
                    webhook=False,
                    folder=folder / "m",
                    extra_env={"SEMANTIC_SCREEN": "true"},
                ),
                args.idle,
            )
            print(
                f"idle RSS, kindbot run (model on):      {with_model:6.1f} MiB "
                f"(the model's share: {with_model - kindbot:.1f} MiB)"
            )


if __name__ == "__main__":
    main()
