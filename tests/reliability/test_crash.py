"""At least once, end to end: `kindbot run` killed at random points, and nobody left without
an answer, answered twice, or missing what they wrote.

Eight people talk to the real bot in a subprocess over a fake Telegram that delivers each
update again until it is confirmed (the getUpdates offset, or the webhook's 200). The bot is
SIGKILLed at least 20 times per run, at points the fake picks with a seeded plan (see
tests/reliability/crash.py): between commit and send, between send and confirm, at any
request, at any moment. After every kill a fresh `kindbot run` starts on the same database.

The oracle is a run without kills on a fresh database: every person's messages (texts and
buttons, in order) and their entries in the database (kind, status, decrypted answers) must
come out the same. Set KINDBOT_CRASH_SEED to try other kill plans.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from storage.crypto import new_key
from storage.scratch import fresh_pg_database
from tests.conftest import PG_ENV, PG_URL, need_postgres
from tests.reliability.crash import Expected, Setup, each_line, people, talk

pytestmark = pytest.mark.crash

PEOPLE = 8
KILLS = 20  # per run; every planned kill happens (a plan whose moment never comes is a timer)
MIN_KILLS = 20
SEED = int(os.environ.get("KINDBOT_CRASH_SEED", "20261130"))
SCRIPTS = people(PEOPLE)


@pytest.fixture(scope="module")
def expected(tmp_path_factory: pytest.TempPathFactory) -> Expected:
    """The run without kills (SQLite, polling): what everyone should see and have stored."""
    outcome = talk(Setup(tmp_path_factory.mktemp("no-kills"), new_key()), SCRIPTS)
    assert outcome.exit_code == 0
    for pid, transcript in outcome.transcripts.items():
        assert not transcript.unanswered
        assert all(transcript.replies), f"{pid}: a step without a reply"
        entries = outcome.entries[pid]
        assert [(kind, status) for kind, status, _ in entries] in (
            [("reframe", "finished"), ("checkin", "finished")],
            [("checkin", "finished"), ("reframe", "finished")],
        ), entries
        thought = next(answers["thought"] for kind, _, answers in entries if kind == "reframe")
        closing = [r for r in transcript.all_replies() if thought in r and " → " in r]
        assert closing, f"{pid}: no closing summary quoting {thought!r}"
    return Expected(outcome.transcripts, outcome.entries)


def test_a_run_without_kills_is_told_the_same_way_twice(expected: Expected, tmp_path: Path) -> None:
    """The machinery itself is deterministic, and the verdict clean when nothing is killed:
    another run without kills, through the webhook this time, paced by the first run's
    answers as the runs with kills are, gives the same messages and the same entries."""
    outcome = talk(Setup(tmp_path, new_key(), webhook=True), SCRIPTS, expected=expected)
    report = outcome.report(expected)
    assert report.verdict.ok, report.message("sqlite+webhook, no kills", 0)
    assert {pid: t.all_replies() for pid, t in outcome.transcripts.items()} == {
        pid: t.all_replies() for pid, t in expected.transcripts.items()
    }
    assert outcome.entries == expected.entries
    assert outcome.exit_code == 0


# skipped before the run without kills is made for them, not after
POSTGRES = [
    pytest.mark.postgres,
    pytest.mark.skipif(not PG_URL, reason=f"PostgreSQL tests need {PG_ENV}"),
]
VARIANTS = [
    pytest.param("sqlite", False, 0, id="sqlite-polling"),
    pytest.param("postgres", False, 1, id="postgres-polling", marks=POSTGRES),
    pytest.param("sqlite", True, 2, id="sqlite-webhook"),
    pytest.param("postgres", True, 3, id="postgres-webhook", marks=POSTGRES),
]


@pytest.mark.parametrize(("database", "webhook", "variant"), VARIANTS)
def test_killed_at_random_points_everyone_is_answered_once(
    expected: Expected, tmp_path: Path, database: str, webhook: bool, variant: int
) -> None:
    seed = SEED + variant
    with database_url(database) as url:
        outcome = talk(
            Setup(tmp_path, new_key(), database_url=url, webhook=webhook),
            SCRIPTS,
            expected=expected,
            kills=KILLS,
            seed=seed,
        )
    report = outcome.report(expected)
    name = f"{database}+{'webhook' if webhook else 'polling'}"
    (tmp_path / "transcripts.txt").write_text("\n".join(each_line(outcome.transcripts)) + "\n")
    (tmp_path / "timeline.txt").write_text("\n".join(outcome.timeline) + "\n")
    (tmp_path / "verdict.txt").write_text(report.message(name, seed, details=None) + "\n")
    message = (
        f"{report.message(name, seed)}\n(in {tmp_path}: verdict.txt, transcripts.txt, "
        "timeline.txt, kindbot.log)"
    )
    print(message)
    assert len(outcome.kills) >= MIN_KILLS, message
    assert report.verdict.ok, message


@contextmanager
def database_url(database: str) -> Iterator[str | None]:
    """None for SQLite (a file in the run's folder), else a fresh PostgreSQL database."""
    if database == "sqlite":
        yield None
        return
    with fresh_pg_database(need_postgres(), "kindbot_crash") as url:
        yield url
