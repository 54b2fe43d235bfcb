"""A bare python-telegram-bot echo bot: the baseline bench/http.py measures kindbot against.

Stock PTB throughout: the default ApplicationBuilder (its HTTPXRequest), one MessageHandler
that echoes the text, and PTB's own `run_polling` or `run_webhook`. Run by bench/http.py in a
subprocess of its own, so that its CPU time is counted apart from the fake Bot API's.

Run: python -m bench.echo_bot API_URL polling
     python -m bench.echo_bot API_URL webhook PORT SECRET

With ECHO_IMPORTS set (module names, comma-separated) it imports them first and never uses
them: bench/memory.py measures so what the libraries kindbot's stack fixes cost on their own.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

from telegram import Update
from telegram.ext import Application, ApplicationBuilder, ContextTypes, MessageHandler, filters

from bot.testing.botapi import TOKEN


async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Say the text back."""
    if update.message and update.message.text:
        await update.message.reply_text(update.message.text)


def build(api_url: str) -> Application[Any, Any, Any, Any, Any, Any]:
    application = ApplicationBuilder().token(TOKEN).base_url(f"{api_url}/bot").build()
    application.add_handler(MessageHandler(filters.TEXT, echo))
    return application


def main(argv: list[str]) -> None:
    api_url, mode = argv[0], argv[1]
    for name in filter(None, os.environ.get("ECHO_IMPORTS", "").split(",")):
        importlib.import_module(name.strip())
    application = build(api_url)
    if mode == "polling":
        application.run_polling(timeout=10)
        return
    port, secret = int(argv[2]), argv[3]
    application.run_webhook(
        listen="127.0.0.1",
        port=port,
        url_path="hook",
        secret_token=secret,
        webhook_url=f"http://127.0.0.1:{port}/hook",
    )


if __name__ == "__main__":
    main(sys.argv[1:])
