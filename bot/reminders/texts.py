"""The sentence pieces reminder code fills in (`dialogs/<locale>/reminder_texts.yaml`).

Full sentences a person reads live in the dialog files; these are the small pieces code has
to combine (a summary line per reminder, weekday names, the zone shown back in words).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.engine.texts import fill
from bot.engine.yamlsource import LineDict, SourceError, line_of, load_yaml

FILE = "reminder_texts.yaml"
TOP_KEY = "reminder_texts"
REQUIRED = frozenset(
    {
        "zone_words",
        "nothing_set",
        "line_reflection",
        "line_checkin",
        "line_weekly",
        "weekly_quoting",
        "weekly_name",
        "reflection_name",
        "checkin_name",
        "state_on",
        "state_off",
        "days_every",
        "days_weekdays",
        "days_weekends",
        "days_some",
        "paused",
        "not_paused",
        "zone_set_from_location",
        "zone_not_found_from_location",
        "checkin_fallback",
        "zone_choice",
        "until_words",
        "date_format",
        *(f"day_{i}" for i in range(7)),
    }
)


class ReminderTextsInvalid(Exception):
    def __init__(self, errors: list[SourceError]) -> None:
        super().__init__("\n".join(str(e) for e in errors))
        self.errors = errors


@dataclass
class ReminderTexts:
    """Per locale, falling back to the default locale key by key."""

    default: str
    locales: dict[str, dict[str, str]] = field(default_factory=dict)

    def get(self, key: str, locale: str | None = None, **values: Any) -> str:
        base = (locale or self.default).split("-")[0].split("_")[0].lower()
        found = self.locales.get(base, {}).get(key)
        if found is None:
            found = self.locales[self.default].get(key, key)
        return fill(found, values)

    @classmethod
    def load(cls, root: Path, *, default: str = "en") -> ReminderTexts:
        errors, texts = validate(root, default=default)
        if errors or texts is None:
            raise ReminderTextsInvalid(errors)
        return texts


def validate(root: Path, *, default: str = "en") -> tuple[list[SourceError], ReminderTexts | None]:
    """Check every locale's file: a mapping of key → non-empty string; the default complete."""
    errors: list[SourceError] = []
    texts = ReminderTexts(default=default)
    for folder in sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
        path = folder / FILE
        if not path.exists():
            continue
        name = f"{folder.name}/{FILE}"
        raw, load_errors = load_yaml(path, name)
        errors.extend(load_errors)
        if load_errors:
            continue
        section = raw.get(TOP_KEY) if isinstance(raw, LineDict) else None
        if not isinstance(section, dict):
            errors.append(SourceError(name, 1, f"expected a mapping under {TOP_KEY!r}"))
            continue
        found: dict[str, str] = {}
        for key, value in section.items():
            if not isinstance(value, str):
                errors.append(
                    SourceError(name, line_of(raw, [TOP_KEY, key]), f"{key}: expected a string")
                )
                continue
            found[str(key)] = value
        texts.locales[folder.name] = found
    if default not in texts.locales:
        errors.append(SourceError(f"{default}/{FILE}", 0, "missing (reminder texts)"))
    else:
        missing = sorted(REQUIRED - set(texts.locales[default]))
        if missing:
            errors.append(
                SourceError(f"{default}/{FILE}", 1, f"missing text for: {', '.join(missing)}")
            )
    return errors, (None if errors else texts)
