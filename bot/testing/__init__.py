"""A fake Telegram for tests and benchmarks, shipped with the bot so both use the same one.

- `botapi`: the Bot API's answers and a record of every call (no PTB);
- `updates`: update dicts as Telegram sends them;
- `loopback`: the fake over HTTP on 127.0.0.1, and a webhook pusher;
- `harness`: kindbot's real PTB Application on the fake, in process.
"""
