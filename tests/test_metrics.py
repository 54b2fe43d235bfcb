"""bot.metrics on its own: fixed label sets, reminders, a fresh registry per `reset`."""

from __future__ import annotations

from bot import metrics
from tests.telegram.test_monitoring import scraped


def samples() -> dict[str, float]:
    return scraped(metrics.exposition()[0].decode())


def test_a_label_value_outside_its_set_is_counted_as_other() -> None:
    metrics.reset()
    metrics.update("webhook", "I want to be left alone")
    metrics.update("carrier pigeon", "handled")
    metrics.crisis_event("someone's words")
    metrics.reminder_failed("user 12345 blocked")
    metrics.step("for user 12345", 0.01)
    metrics.screened("crisis: my words", 0.001)
    found = samples()
    assert found['kindbot_updates_total{outcome="other",source="webhook"}'] == 1
    assert found['kindbot_updates_total{outcome="handled",source="other"}'] == 1
    assert found['kindbot_crisis_events_total{level="other"}'] == 1
    assert found['kindbot_reminder_failures_total{kind="other"}'] == 1
    assert found['kindbot_steps_total{outcome="other"}'] == 1
    assert found['kindbot_screen_verdicts_total{level="other"}'] == 1
    assert not any("12345" in name or "words" in name for name in found)


def test_reminders_are_counted_with_their_lag() -> None:
    metrics.reset()
    metrics.reminder_sent(4.0)
    metrics.reminder_sent(-1.0)  # a clock a little behind the due time: not early, on time
    metrics.reminder_failed("blocked")
    found = samples()
    assert found["kindbot_reminders_sent_total"] == 2
    assert found['kindbot_reminder_lag_seconds_bucket{le="1.0"}'] == 1
    assert found['kindbot_reminder_lag_seconds_bucket{le="5.0"}'] == 2
    assert found["kindbot_reminder_lag_seconds_sum"] == 4.0
    assert found['kindbot_reminder_failures_total{kind="blocked"}'] == 1


def test_reset_starts_from_zero_and_every_series_is_there_from_the_start() -> None:
    metrics.update("polling", "handled")
    fresh = metrics.reset()
    found = samples()
    assert fresh is metrics.current()
    assert found['kindbot_updates_total{outcome="handled",source="polling"}'] == 0
    assert found['kindbot_crisis_events_total{level="sos"}'] == 0
    assert not any(name.endswith("_created") or "_created{" in name for name in found)


def test_openmetrics_is_given_to_a_scraper_that_asks_for_it() -> None:
    metrics.reset()
    body, content_type = metrics.exposition("application/openmetrics-text; version=1.0.0")
    assert content_type.startswith("application/openmetrics-text")
    assert body.endswith(b"# EOF\n")
    plain, content_type = metrics.exposition()
    assert content_type == "text/plain; version=0.0.4; charset=utf-8"
    assert b"kindbot_updates_total" in plain
