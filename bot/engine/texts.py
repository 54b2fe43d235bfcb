"""Choosing a phrasing and filling in a person's own words.

Phrasings are picked by the run number (how many times this person has started this dialog)
so a returning person meets different words, while a replay of the same conversation is
deterministic (transcripts can assert on it).
"""

from __future__ import annotations

import string
import zlib
from collections.abc import Mapping
from typing import Any

_FORMATTER = string.Formatter()

# Keys the engine itself uses from each locale's messages.yaml.
REQUIRED_MESSAGES = frozenset(
    {
        "help",
        "welcome_back",
        "idle",
        "unknown_command",
        "unsupported_input",
        "empty_text",
        "need_words",
        "too_long_offer",
        "too_long_use_first",
        "too_long_write_shorter",
        "too_long_shorter",
        "pick_an_option",
        "pick_above",
        "pick_by_words",
        "pick_above_by_words",
        "scale_hint",
        "scale_above",
        "split_added",
        "throwaway_words",
        "choice_filler_words",
        "scale_filler_words",
        "feeling_emoji",
        "feeling_heard",
        "ordinal_words",
        "say_more",
        "say_more_examples_button",
        "examples_general",
        "step_passed",
        "stopped_saved",
        "stopped_saved_again",
        "stopped",
        "nothing_to_stop",
        "already_here",
        "back_to_previous",
        "consent_first",
        "no_consent_yet",
        "declined_idle",
        "heard_you",
        "unrecorded_note",
        "greeting_words",
        "something_went_wrong",
        "private_only",
        "command_start",
        "command_help",
        "command_cancel",
        "go_ahead_words",
        "stopped_now",
        "not_by_number",
    }
)


def placeholders(template: str) -> list[str]:
    """Names used as `{name}` in a template; raises ValueError on malformed braces."""
    names = []
    for _, field_name, format_spec, conversion in _FORMATTER.parse(template):
        if field_name is None:
            continue
        if not field_name.isidentifier() or format_spec or conversion:
            raise ValueError(f"placeholder {{{field_name}}} must be a plain name like {{thought}}")
        names.append(field_name)
    return names


def pick(phrasings: list[str], *, run: int, salt: str) -> str:
    """One phrasing: rotates with each run, offset per state so prompts don't move in lockstep."""
    if not phrasings:
        return ""
    return phrasings[(run + zlib.crc32(salt.encode())) % len(phrasings)]


class _Blank(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "…"


def fill(template: str, values: Mapping[str, Any]) -> str:
    """Fill placeholders; a value not (yet) given shows as an ellipsis rather than failing."""
    return template.format_map(_Blank({k: v for k, v in values.items() if v is not None}))
