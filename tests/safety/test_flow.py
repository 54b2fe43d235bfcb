"""The crisis pause through the engine: country choice, the record (never the words), consent,
check-in thresholds from settings, paced outputs, deletion, and the terminal chat."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import delete, text

from bot.app import App, open_app
from bot.config import REPO_ROOT
from bot.engine.events import ChoiceMade, Message, Output, Pause, Text, UserRef
from storage import repo
from storage.models import SafetyEvent, SafetyPlan, User
from tests.conftest import Clock, make_settings

CRISIS_WORDS = "I want to kill myself, pelican"


def texts(outputs: list[Output]) -> list[str]:
    return [o.text for o in outputs if isinstance(o, Message)]


async def say(app: App, ref: UserRef, line: str) -> list[Output]:
    return await app.engine.handle(ref, Text(line))


async def press(app: App, ref: UserRef, outputs: list[Output], label: str) -> list[Output]:
    for message in reversed([o for o in outputs if isinstance(o, Message)]):
        for option in message.options:
            if option.label == label:
                return await app.engine.handle(ref, ChoiceMade(option.value, message.step))
    raise AssertionError(f"no button {label!r} in {texts(outputs)!r}")


async def consent(app: App, ref: UserRef) -> list[Output]:
    out = await say(app, ref, "/start")
    return await press(app, ref, out, "Yes, that's okay")


async def user_of(app: App, ref: UserRef) -> User:
    async with app.db.session() as session:
        user, _ = await repo.get_or_create_user(
            session, channel=ref.channel, external_id=ref.external_id
        )
        await session.commit()
        return user


@pytest.mark.parametrize(
    ("tag", "expected"), [("en-NZ", "1737"), ("pt-BR", "188"), ("en-IE", "Pieta")]
)
async def test_the_language_tag_region_picks_the_helpline(
    app: App, tag: str, expected: str
) -> None:
    ref = UserRef("telegram", "1", language_tag=tag)
    out = await say(app, ref, CRISIS_WORDS)
    assert expected in texts(out)[0] or expected in "".join(texts(await say(app, ref, "/sos")))


async def test_the_first_reply_names_the_helpline_for_the_language_region(app: App) -> None:
    out = await say(app, UserRef("telegram", "2", language_tag="en-US"), "kms")
    first = texts(out)[0]
    assert "988" in first
    assert "911" in first


async def test_default_country_and_the_persons_own_choice(tmp_path: Path, clock: Clock) -> None:
    settings = make_settings(tmp_path, default_country="de")
    async with open_app(settings, clock=clock) as app:
        ref = UserRef("console", "d")
        assert "TelefonSeelsorge" in texts(await say(app, ref, "I want to die"))[0]
        await say(app, ref, "/country FR")
        await say(app, ref, "yes")
        assert "3114" in texts(await say(app, ref, "I want to die"))[0]
        await say(app, ref, "yes")
        await say(app, ref, "/country Bolivia")  # no list yet: the international one
        assert "befrienders" in texts(await say(app, ref, "I want to die"))[0]
        await say(app, ref, "yes")
        out = await say(app, ref, "/country auto")
        assert "Germany" in texts(out)[0]
        assert "Germany" in texts(await say(app, ref, "/country Deutschland"))[0]
        assert "didn't recognise" in texts(await say(app, ref, "/country Atlantis"))[0]


async def test_a_crisis_is_recorded_as_an_event_never_as_words(
    app: App, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    ref = UserRef("console", "rec")
    await consent(app, ref)
    await say(app, ref, "/reframe")
    await say(app, ref, "I'm hopeless at everything")
    await say(app, ref, CRISIS_WORDS)
    user = await user_of(app, ref)
    assert user.id is not None
    async with app.db.session() as session:
        events = await repo.list_safety_events(session, user_id=user.id)
        assert [(e.category, e.level, e.dialog, e.state) for e in events] == [
            ("suicide", "crisis", "reframe", "feeling")
        ]
        # nothing anywhere in the database holds the words, encrypted columns included
        for table in ("users", "conversations", "entries", "safety_events", "safety_plans"):
            rows = (await session.execute(text(f"SELECT * FROM {table}"))).all()
            assert "pelican" not in repr(rows)
            assert "kill myself" not in repr(rows)
        for entry in await repo.list_entries(session, user_id=user.id):
            assert "pelican" not in repr(repo.entry_answers(entry, cipher=app.db.cipher))
        _row, state = await repo.load_conversation(
            session, user_id=user.id, cipher=app.db.cipher, lock=False
        )
        assert "pelican" not in repr(state)
    assert "pelican" not in caplog.text
    assert "kill myself" not in caplog.text


async def test_nothing_is_stored_before_consent(app: App) -> None:
    ref = UserRef("console", "nc")
    out = await say(app, ref, CRISIS_WORDS)
    assert "Are you safe right now?" in texts(out)[0]
    user = await user_of(app, ref)
    async with app.db.session() as session:
        assert await repo.list_safety_events(session, user_id=user.id or 0) == []


async def test_a_crisis_during_onboarding_returns_to_the_consent_question(app: App) -> None:
    ref = UserRef("console", "ob")
    out = await say(app, ref, "/start")
    assert "okay for me to store" in texts(out)[-1]
    out = await say(app, ref, "i want to end it all")
    assert "Are you safe right now?" in texts(out)[0]
    out = await say(app, ref, "yes")
    assert "okay for me to store" in texts(out)[-1]


async def test_thresholds_come_from_settings(tmp_path: Path, clock: Clock) -> None:
    settings = make_settings(tmp_path, high_distress_threshold=5, low_distress_threshold=1)
    async with open_app(settings, clock=clock) as app:
        ref = UserRef("console", "t")
        await consent(app, ref)
        await say(app, ref, "/checkin")
        out = await say(app, ref, "5")
        assert [o.label for o in out[-1].options] == [  # type: ignore[union-attr]
            "Slow breathing",
            "Noticing my senses (5-4-3-2-1)",
        ]
        await say(app, ref, "/cancel")
        await say(app, ref, "/checkin")  # a check-in always starts fresh (issue 12, item 9)
        out = await say(app, ref, "2")
        assert any("self-compassion" in t for t in texts(out))


def test_thresholds_must_be_in_order(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="LOW_DISTRESS_THRESHOLD"):
        make_settings(tmp_path, high_distress_threshold=4, low_distress_threshold=4)


async def test_breathing_is_paced_with_pauses_not_sleeps(app: App) -> None:
    ref = UserRef("console", "b")
    out = await say(app, ref, "/breathe")
    pauses = [o for o in out if isinstance(o, Pause)]
    assert len(pauses) >= 6
    assert sum(p.seconds for p in pauses) >= 20


async def test_forgetting_a_person_removes_their_events_and_plan(any_app: App) -> None:
    app = any_app
    ref = UserRef("console", "gone")
    await consent(app, ref)
    await say(app, ref, "/safetyplan")
    await say(app, ref, "I go quiet")
    await say(app, ref, CRISIS_WORDS)
    user = await user_of(app, ref)
    async with app.db.session() as session:
        plan = await repo.get_safety_plan(session, user_id=user.id or 0, cipher=app.db.cipher)
        assert plan == {"warning_signs": "I go quiet"}
        raw = await session.get(SafetyPlan, user.id)
        assert raw is not None
        assert "quiet" not in raw.plan_enc
        await session.execute(delete(User).where(User.id == user.id))  # type: ignore[arg-type]
        await session.commit()
        assert (await session.execute(text("SELECT count(*) FROM safety_events"))).scalar() == 0
        assert (await session.execute(text("SELECT count(*) FROM safety_plans"))).scalar() == 0
    assert isinstance(SafetyEvent.__tablename__, str)


def test_terminal_chat_shows_the_helpline_in_the_first_reply(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DATA_DIR": str(tmp_path / "data"),
        "DEFAULT_COUNTRY": "GB",
        "LOG_LEVEL": "WARNING",
    }
    env.pop("DATABASE_URL", None)
    env.pop("ENCRYPTION_KEY", None)
    # "I'm safe" in words: a typed number never ends the pause (issue 12, item 3)
    script = "/start\n1\n/reframe\nI never get anything right\ni want to kms\nI'm safe\n"
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "chat", "--user", "pipe"],
        input=script,
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
        check=True,
    )
    replies = done.stdout.split("kindbot: ")
    crisis = next(i for i, r in enumerate(replies) if "Are you safe right now?" in r)
    assert "Samaritans: call 116 123" in replies[crisis]
    assert "999" in replies[crisis]
    assert "what do you feel?" in replies[-1]
    assert "kms" not in done.stderr
    assert REPO_ROOT.exists()


@pytest.mark.parametrize(
    ("answer", "understood"),
    [
        ("yes im safe", "glad"),
        ("I am safe now", "glad"),
        ("I'm okay", "glad"),
        ("im fine", "glad"),
        ("fine", "glad"),
        ("ok", "glad"),
        ("Safe, continue", "glad"),
        ("no", "Please call"),
        ("not safe", "Please call"),
        ("im not ok", "Please call"),
        ("I'm not okay.", "Please call"),
    ],
)
async def test_typed_answers_to_are_you_safe(app: App, answer: str, understood: str) -> None:
    ref = UserRef("console", f"typed-{abs(hash(answer))}")
    await consent(app, ref)
    await say(app, ref, "i want to hurt my self")
    reply = texts(await say(app, ref, answer))
    assert understood in reply[0], reply


@pytest.mark.parametrize(("rating", "contacts"), [("10", True), ("9", True), ("8", False)])
async def test_a_check_in_at_nine_or_ten_names_the_contacts_first(
    app: App, rating: str, contacts: bool
) -> None:
    ref = UserRef("console", f"checkin-{rating}", language_tag="en-US")
    await consent(app, ref)
    await say(app, ref, "/checkin")
    reply = texts(await say(app, ref, rating))
    assert ("988" in reply[0]) is contacts, reply
    assert ("911" in reply[0]) is contacts, reply
    assert "Which would you like?" in reply[-1]  # grounding still comes next


async def test_typed_messages_in_a_pause_get_short_varied_replies(app: App) -> None:
    ref = UserRef("telegram", "still", language_tag="en-GB")
    first = texts(await say(app, ref, "/sos"))
    assert "Samaritans" in first[0]
    replies = [texts(await say(app, ref, line)) for line in ("hmm", "I'm not sure what to type")]
    assert all(len(r) == 1 and "Samaritans" not in r[0] for r in replies)
    assert replies[0] != replies[1]
    assert all("Are you safe" in r[0] for r in replies)


async def test_sos_in_an_open_pause_sends_one_list(app: App) -> None:
    ref = UserRef("telegram", "sos2", language_tag="en-GB")
    await say(app, ref, "/sos")
    again = await say(app, ref, "/sos")
    got = texts(again)
    assert sum("Samaritans" in t for t in got) == 1
    last = [o for o in again if isinstance(o, Message)][-1]
    assert last.text == "Are you safe right now?"
    assert "Choose my country" in [o.label for o in last.options]


async def test_declining_consent_is_not_asked_the_country(app: App) -> None:
    ref = UserRef("telegram", "decl", language_tag="en-GB")
    out = await say(app, ref, "/start")
    out = await press(app, ref, out, "Not now")
    assert not any("Which country" in t for t in texts(out))
    assert (await user_of(app, ref)).country is None
