"""The `kindbot` command line. Each subcommand is a small function; wiring is at the bottom."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from pydantic import ValidationError

from bot.app import configure_logging, known_actions, open_app
from bot.config import Settings
from bot.engine.catalog import DialogsInvalid, validate_tree
from storage.crypto import WrongKeyError

log = logging.getLogger("kindbot")


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]).upper()
        raise SystemExit(f"kindbot: invalid setting {where}: {first['msg']}") from None


def cmd_chat(args: argparse.Namespace) -> int:
    """Talk to kindbot in the terminal."""
    from bot.console import chat

    settings = _settings()

    async def run() -> None:
        async with open_app(settings) as app:
            await chat(app.engine, args.user)

    asyncio.run(run())
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """Run the Telegram bot: long polling, or a webhook server when WEBHOOK_URL is set."""
    from bot.telegram.application import StartupProblem, serve

    settings = _settings()
    try:
        asyncio.run(serve(settings))
    except StartupProblem as exc:
        print(f"kindbot: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_dialogs_check(args: argparse.Namespace) -> int:
    """Validate every dialog file; list all errors with file and line."""
    settings = _settings()
    root = Path(args.dir) if args.dir else settings.dialogs_dir
    errors, catalog = validate_tree(root, default=settings.default_locale, actions=known_actions())
    for error in errors:
        print(error)
    if errors or catalog is None:
        print(f"{len(errors)} error(s) in {root}", file=sys.stderr)
        return 1
    count = sum(len(locale.dialogs) for locale in catalog.locales.values())
    print(f"ok: {count} dialog(s) in {len(catalog.locales)} locale(s)")
    return 0


def cmd_dialogs_graph(args: argparse.Namespace) -> int:
    """Print a Mermaid diagram of one dialog, from the machine the bot runs."""
    settings = _settings()
    root = Path(args.dir) if args.dir else settings.dialogs_dir
    errors, catalog = validate_tree(root, default=settings.default_locale, actions=known_actions())
    if catalog is None:
        for error in errors:
            print(error, file=sys.stderr)
        return 1
    machine = catalog.dialog(args.name, args.locale)
    if machine is None:
        print(f"no dialog named {args.name!r}", file=sys.stderr)
        return 1
    print(machine.mermaid(), end="")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kindbot", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    chat = sub.add_parser("chat", help=cmd_chat.__doc__)
    chat.add_argument("--user", default="local", help="who you are in the database")
    chat.set_defaults(func=cmd_chat)

    run = sub.add_parser("run", help=cmd_run.__doc__)
    run.set_defaults(func=cmd_run)

    dialogs = sub.add_parser("dialogs", help="check or draw dialog files")
    dialogs_sub = dialogs.add_subparsers(dest="dialogs_command", required=True)
    check = dialogs_sub.add_parser("check", help=cmd_dialogs_check.__doc__)
    check.add_argument("--dir", help="dialogs folder (default: DIALOGS_DIR)")
    check.set_defaults(func=cmd_dialogs_check)
    graph = dialogs_sub.add_parser("graph", help=cmd_dialogs_graph.__doc__)
    graph.add_argument("name")
    graph.add_argument("--locale", default=None)
    graph.add_argument("--dir", help="dialogs folder (default: DIALOGS_DIR)")
    graph.set_defaults(func=cmd_dialogs_graph)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = _settings()
    configure_logging(settings.log_level)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except DialogsInvalid as exc:
        print("kindbot: the dialog files have errors:", file=sys.stderr)
        for error in exc.errors:
            print(f"  {error}", file=sys.stderr)
        return 1
    except WrongKeyError as exc:
        print(f"kindbot: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
