"""Telegram updates over loopback HTTP with PTB's real request class: kindbot against a bare
PTB echo bot, each in a process of its own.

bench/updates.py stubs the network at PTB's request seam, and so misses what a real worker
spends on HTTP (httpx, httpcore, the sockets). Here the fake Bot API (`bot.testing`) is served
over HTTP on 127.0.0.1 with keep-alive, as Telegram serves it, and each bot runs unchanged:
`kindbot run` (the real code path: settings, start-up, poller or webhook server, outbox), and
`bench/echo_bot.py` (stock PTB: default request class, `run_polling` / `run_webhook`).

1. CPU per update, polling (getUpdates from the fake) and webhook (updates POSTed to the bot):
   the bot's process CPU (user + system, from /proc, so the fake's and the driver's CPU are
   not counted) over waves of one update per person, `--people` at once. kindbot answers
   reframe steps; the echo bot echoes the same texts. Rounds alternate between the two, so
   the shared machine's noise hits both alike; the ratio is taken per round and its median
   printed (targets: kindbot <= 0.7x echo on SQLite, <= 1.0x on PostgreSQL).
2. Throughput of 1 and 2 kindbot webhook workers on one PostgreSQL database: `--people`
   people writing at once, each sending the next update once the last one was answered, the
   requests spread over the workers in turn (a load balancer); updates/s, and the workers'
   CPU per update. Needs KINDBOT_TEST_POSTGRES_URL (as `--postgres`); skipped without it.

The crisis screen's model is off (SEMANTIC_SCREEN=false; its cost has a budget of its own):
what is measured is the bot, its database and its HTTP.

Run: .venv/bin/python -m bench.http [--updates N] [--rounds R] [--people P] [--quick]
     [--profile DIR]  (each bot under cProfile; DIR/<bot>.prof for pstats)
     [--stock]  (a third bot: kindbot on PTB's stock HTTPXRequest, the lean layer's before)
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.config import REPO_ROOT
from bot.testing.botapi import TOKEN, BotAPI
from bot.testing.loopback import FakeBotServer
from bot.testing.updates import CYCLE, Updates
from storage.crypto import new_key
from storage.scratch import fresh_pg_database

SECRET = "bench-http_Secret-1"
START_TIMEOUT = 60.0  # s for a bot to come up on a loaded machine
WAVE_TIMEOUT = 60.0  # s for one wave of updates to be answered
TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int) -> float:
    """Seconds of CPU (user + system, all threads) the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime (fields 14 and 15)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.002)


# -- Telegram's side: posting to a webhook ----------------------------------------------------
class Poster:
    """POSTs updates to webhook URLs the way Telegram does (the secret header, keep-alive: one
    connection per sending thread and bot). Returns the status."""

    def __init__(self) -> None:
        self._local = threading.local()

    def post(self, port: int, update: dict[str, Any]) -> int:
        connections: dict[int, http.client.HTTPConnection] = self._local.__dict__.setdefault(
            "connections", {}
        )
        body = json.dumps(update).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Telegram-Bot-Api-Secret-Token": SECRET,
        }
        for _ in range(2):  # a kept-alive connection the bot closed meanwhile: once more
            connection = connections.get(port)
            if connection is None:
                connection = connections[port] = http.client.HTTPConnection(
                    "127.0.0.1", port, timeout=WAVE_TIMEOUT
                )
            try:
                connection.request("POST", "/hook", body, headers)
                response = connection.getresponse()
                response.read()
                return response.status
            except (OSError, http.client.HTTPException):
                connection.close()
                del connections[port]
        return 0


# -- the bots ---------------------------------------------------------------------------------
@dataclass
class Bot:
    """A bot in a process of its own, on a fake Bot API of its own (over loopback HTTP)."""

    name: str
    kindbot: bool
    webhook: bool
    folder: Path
    database_url: str | None = None
    profile: Path | None = None
    api: BotAPI = field(default_factory=BotAPI)
    extra_env: dict[str, str] = field(default_factory=dict)
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    def command(self, api_url: str) -> list[str]:
        python = [sys.executable]
        if self.profile is not None:
            python += ["-m", "cProfile", "-o", str(self.profile / f"{self.name}.prof")]
        if self.kindbot:
            return [*python, "-m", "bot.cli", "run"]
        mode = ["webhook", str(self.port), SECRET] if self.webhook else ["polling"]
        return [*python, "-m", "bench.echo_bot", api_url, *mode]

    def environment(self, api_url: str) -> dict[str, str]:
        drop = ("TELEGRAM_", "WEBHOOK_", "REMINDER_", "DATABASE_URL", "DATA_DIR", "SEMANTIC_")
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(drop) and not k.lower().endswith("_proxy")
        }
        env.update(
            PYTHONPATH=str(REPO_ROOT),
            DATA_DIR=str(self.folder / "data"),
            ENCRYPTION_KEY=self.key,
            TELEGRAM_BOT_TOKEN=TOKEN,
            TELEGRAM_API_URL=api_url,
            SEMANTIC_SCREEN="false",  # the crisis screen's model has its own budget
            LOG_LEVEL="WARNING",
            # the bench's people answer at once: not pieces of one answer to be joined
            SPLIT_SECONDS="0",
            QUIET_SECONDS="0",
        )
        if self.database_url:
            env["DATABASE_URL"] = self.database_url
        env.update(self.extra_env)
        if self.webhook:
            env.update(
                WEBHOOK_URL=f"http://127.0.0.1:{self.port}/hook",
                WEBHOOK_LISTEN="127.0.0.1",
                WEBHOOK_PORT=str(self.port),
                WEBHOOK_SECRET=SECRET,
            )
        return env

    @property
    def key(self) -> str:
        path = self.folder / "key"
        if not path.exists():
            path.write_text(new_key())
        return path.read_text()

    @contextmanager
    def running(self) -> Iterator[Bot]:
        self.folder.mkdir(parents=True, exist_ok=True)
        if self.webhook:
            self.port = free_port()
        with FakeBotServer(self.api, keep_alive=True) as server, ExitStack() as stack:
            env = self.environment(server.url)
            if self.kindbot:
                migrate(env, self.folder)
            log = stack.enter_context((self.folder / "bot.log").open("ab"))
            self.process = subprocess.Popen(
                self.command(server.url),
                cwd=self.folder,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            try:
                self._wait_ready()
                yield self
                self._stop()
            finally:
                if self.process.poll() is None:
                    self.process.kill()
                    self.process.wait(timeout=10)

    def _wait_ready(self) -> None:
        def ready() -> bool:
            if self.process is not None and self.process.poll() is not None:
                tail = (self.folder / "bot.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{self.name} exited at start:\n{tail}")
            if self.webhook:
                return bool(self.api.sent("setWebhook")) and listening(self.port)
            return bool(self.api.sent("deleteWebhook"))

        wait_until(ready, START_TIMEOUT, f"{self.name} to start")

    def _stop(self) -> None:
        """SIGTERM, as an operator stops it (a profile is written on the way out)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def cpu(self) -> float:
        assert self.process is not None
        return process_cpu(self.process.pid)


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def migrate(env: dict[str, str], folder: Path) -> None:
    """`kindbot migrate` first, as an operator deploys (`run` then only checks the schema)."""
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "migrate"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT,
    )
    if done.returncode != 0:
        raise RuntimeError(f"kindbot migrate failed:\n{done.stderr[-2000:]}")


# -- the people -------------------------------------------------------------------------------
class People:
    """`count` people talking to one bot; a wave is one update from each, answered together."""

    def __init__(self, bot: Bot, count: int, first: int = 1, poster: Poster | None = None):
        self.bot = bot
        self.ids = list(range(first, first + count))
        self.updates = Updates()
        self.poster = poster or Poster()
        self.pool = ThreadPoolExecutor(max_workers=count)
        self.step = 0  # where everyone is in CYCLE

    def close(self) -> None:
        self.pool.shutdown()

    def wave(self, texts: Sequence[str]) -> None:
        """Each person sends their text; returns once the bot has handled all of them:
        answered each person, and (kindbot) confirmed the update: the webhook's 200 or,
        polling, a getUpdates offset past it."""
        api = self.bot.api
        start = len(api.calls)
        batch = [self.updates.text(p, t) for p, t in zip(self.ids, texts, strict=True)]
        if self.bot.webhook:
            if len(batch) == 1:
                statuses = [self._post(batch[0])]
            else:
                statuses = list(self.pool.map(self._post, batch))
            if any(status != 200 for status in statuses):
                raise RuntimeError(f"{self.bot.name}: webhook answered {statuses}")
        else:
            for update in batch:
                api.push_update(update)
            if self.bot.kindbot:
                last = batch[-1]["update_id"]
                wait_until(lambda: api.confirmed > last, WAVE_TIMEOUT, "getUpdates' offset")

        def answered() -> bool:
            told = {c.chat_id for c in api.calls[start:] if c.method == "sendMessage"}
            return told.issuperset(self.ids)

        wait_until(answered, WAVE_TIMEOUT, f"{self.bot.name}'s replies")

    def _post(self, update: dict[str, Any]) -> int:
        return self.poster.post(self.bot.port, update)

    def onboard(self) -> None:
        """/start and consent (typed as the option's number), then one whole reframe."""
        self.wave(["/start"] * len(self.ids))
        self.wave(["1"] * len(self.ids))
        self.steps(len(CYCLE) * len(self.ids))

    def steps(self, updates: int) -> None:
        """At least `updates` updates, in waves: each one the next reframe step."""
        for _ in range(-(-updates // len(self.ids))):
            self.wave([CYCLE[self.step % len(CYCLE)]] * len(self.ids))
            self.step += 1


def cpu_per_update(people: People, updates: int) -> float:
    """µs of the bot's CPU per update over at least `updates` updates."""
    waves = -(-updates // len(people.ids))
    start = people.bot.cpu()
    people.steps(waves * len(people.ids))
    return (people.bot.cpu() - start) / (waves * len(people.ids)) * 1e6


# -- the measurements -------------------------------------------------------------------------
@dataclass
class Comparison:
    label: str
    echo: list[float] = field(default_factory=list)
    kindbot: list[float] = field(default_factory=list)
    stock: list[float] = field(default_factory=list)  # kindbot on PTB's stock request class
    calls: float = 0.0

    def show(self, target: float | None) -> None:
        if not all(self.echo) or not all(self.kindbot) or not all(self.stock):
            # /proc counts CPU in clock ticks (10 ms): a few updates (--quick) may show none
            print(f"  {self.label:<26} too few updates to measure (a CPU tick is 10 ms)")
            return
        ratios = [k / e for k, e in zip(self.kindbot, self.echo, strict=True)]
        wanted = f"target <= {target:.1f}x; " if target is not None else ""
        print(
            f"  {self.label:<26} echo {statistics.median(self.echo):6.0f} µs   "
            f"kindbot {statistics.median(self.kindbot):6.0f} µs   "
            f"ratio {statistics.median(ratios):5.2f}x   ({wanted}rounds "
            f"{min(ratios):.2f}-{max(ratios):.2f}; {self.calls:.1f} Bot API calls per update)"
        )
        if self.stock:
            stock = [k / e for k, e in zip(self.stock, self.echo, strict=True)]
            before = statistics.median(self.stock)
            print(
                f"  {'':<26} kindbot on PTB's stock HTTPXRequest {before:6.0f} µs   "
                f"ratio {statistics.median(stock):5.2f}x   (the lean request layer's gain: "
                f"{before / statistics.median(self.kindbot):.2f}x)"
            )


def compare(
    label: str,
    folder: Path,
    *,
    webhook: bool,
    database_url: str | None,
    args: argparse.Namespace,
) -> Comparison:
    """The echo bot and kindbot side by side, in alternating rounds."""
    mode = "webhook" if webhook else "polling"
    db = "pg" if database_url else "sqlite"
    echo_bot = Bot(f"echo-{mode}", False, webhook, folder / f"echo-{mode}", profile=args.profile)
    kind_bot = Bot(
        f"kindbot-{db}-{mode}",
        True,
        webhook,
        folder / f"kindbot-{db}-{mode}",
        database_url=database_url,
        profile=args.profile,
    )
    result = Comparison(label)
    with ExitStack() as stack:
        stack.enter_context(echo_bot.running())
        stack.enter_context(kind_bot.running())
        echo, kind = People(echo_bot, args.people), People(kind_bot, args.people)
        stack.callback(echo.close)
        stack.callback(kind.close)
        stock: People | None = None
        if args.stock:
            # LeanRequest hands every request to PTB's HTTPXRequest when a proxy is configured
            # (transport.py); NO_PROXY keeps httpx itself off the (absent) proxy for loopback.
            stock_bot = Bot(
                f"kindbot-stock-{db}-{mode}",
                True,
                webhook,
                folder / f"kindbot-stock-{db}-{mode}",
                database_url=database_url,
                profile=args.profile,
                extra_env={"HTTP_PROXY": "http://127.0.0.1:9", "NO_PROXY": "127.0.0.1"},
            )
            if database_url:
                stock_bot.database_url = stack.enter_context(
                    fresh_pg_database(args.postgres, "kindbot_bench")
                )
            stack.enter_context(stock_bot.running())
            stock = People(stock_bot, args.people)
            stack.callback(stock.close)
            stock.onboard()
        echo.onboard()
        kind.onboard()
        calls = len(kind_bot.api.calls)
        for _ in range(args.rounds):
            result.echo.append(cpu_per_update(echo, args.updates))
            result.kindbot.append(cpu_per_update(kind, args.updates))
            if stock is not None:
                result.stock.append(cpu_per_update(stock, args.updates))
        measured = kind.step - len(CYCLE)
        result.calls = (len(kind_bot.api.calls) - calls) / (measured * len(kind.ids))
    return result


def throughput(folder: Path, url: str, workers: int, args: argparse.Namespace) -> dict[str, float]:
    """updates/s of `workers` kindbot webhook workers on one PostgreSQL database."""
    with fresh_pg_database(url, "kindbot_bench") as database_url:
        key = new_key()
        telegram = BotAPI()  # one Telegram for all workers
        bots = []
        for n in range(workers):
            name = f"worker{n}"
            bot = Bot(name, True, True, folder / f"tp{workers}-{n}", database_url, api=telegram)
            bot.folder.mkdir(parents=True, exist_ok=True)
            (bot.folder / "key").write_text(key)
            bots.append(bot)
        with ExitStack() as stack:
            for bot in bots:  # one after the other: the first one migrates
                stack.enter_context(bot.running())
            poster = Poster()
            people = [
                People(bots[n % workers], 1, first=1000 + n, poster=poster)
                for n in range(args.writers)
            ]
            try:
                for person in people:  # onboarding, one worker each: not measured
                    person.wave(["/start"])
                    person.wave(["1"])
                turn = iter(range(1 << 62))
                lock = threading.Lock()

                def talk(person: People) -> None:
                    """Each update to the next worker in turn; the next once answered."""
                    for _ in range(args.cycles):
                        for step in CYCLE:
                            with lock:
                                person.bot = bots[next(turn) % workers]
                            person.wave([step])

                cpu = [bot.cpu() for bot in bots]
                driver = time.process_time()
                start = time.perf_counter()
                with ThreadPoolExecutor(max_workers=len(people)) as pool:
                    list(pool.map(talk, people))
                elapsed = time.perf_counter() - start
                driver = time.process_time() - driver
                used = sum(bot.cpu() - before for bot, before in zip(bots, cpu, strict=True))
            finally:
                for person in people:
                    person.close()
        updates = len(people) * args.cycles * len(CYCLE)
        return {
            "per_second": updates / elapsed,
            "cpu_per_update": used / updates * 1e6,
            "driver_cpu_share": driver / elapsed,
            "updates": updates,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--updates", type=int, default=270, help="updates per bot per round")
    parser.add_argument("--rounds", type=int, default=5, help="echo/kindbot rounds, alternated")
    parser.add_argument("--people", type=int, default=10, help="people writing at once")
    parser.add_argument("--cycles", type=int, default=3, help="reframes per person (throughput)")
    parser.add_argument("--writers", type=int, default=40, help="people at once (throughput)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (the smoke test)")
    parser.add_argument("--postgres", default=os.environ.get("KINDBOT_TEST_POSTGRES_URL"))
    parser.add_argument("--profile", type=Path, help="run each bot under cProfile, into DIR")
    parser.add_argument(
        "--stock", action="store_true", help="also kindbot on PTB's stock request class"
    )
    parser.add_argument(
        "--only", choices=("polling", "webhook", "throughput"), action="append", help="a part"
    )
    args = parser.parse_args()
    if args.quick:
        args.updates, args.rounds, args.people, args.cycles, args.writers = 4, 1, 2, 1, 4
    if args.profile is not None:
        args.profile = args.profile.resolve()
        args.profile.mkdir(parents=True, exist_ok=True)
    parts = set(args.only or ("polling", "webhook", "throughput"))

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        print(
            f"CPU per update, the bot's own process ({args.rounds} rounds x {args.updates} "
            f"updates per bot, {args.people} people at once; crisis-screen model off):"
        )
        for mode in ("polling", "webhook"):
            if mode not in parts:
                continue
            webhook = mode == "webhook"
            sqlite = compare(
                f"{mode}, SQLite", folder, webhook=webhook, database_url=None, args=args
            )
            sqlite.show(0.7)
            if args.postgres:
                with fresh_pg_database(args.postgres, "kindbot_bench") as url:
                    pg = compare(
                        f"{mode}, PostgreSQL", folder, webhook=webhook, database_url=url, args=args
                    )
                pg.show(1.0)
        if "throughput" not in parts:
            return
        if not args.postgres:
            print("throughput of webhook workers: skipped (set KINDBOT_TEST_POSTGRES_URL)")
            return
        print(
            f"throughput, kindbot webhook workers on one PostgreSQL ({args.writers} people, "
            f"{args.cycles} reframes each, every update answered before the person's next):"
        )
        rates = {}
        for workers in (1, 2):
            found = throughput(folder, args.postgres, workers, args)
            rates[workers] = found["per_second"]
            print(
                f"  {workers} worker{'s' if workers > 1 else ' '}  {found['per_second']:6.0f} "
                f"updates/s   {found['cpu_per_update']:6.0f} µs CPU per update (workers)   "
                f"driver and fake used {found['driver_cpu_share']:.0%} of a core"
            )
        print(f"  2 workers / 1 worker: {rates[2] / rates[1]:.2f}x  ({os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
