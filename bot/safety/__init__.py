"""Crisis safety: the screen on every message, the crisis pause, helplines, the safety plan.

`safety_feature(safety, ...)` is how it plugs into the engine; `load_safety(root, ...)` loads and
validates the data (pattern files per locale, helpline files per country).
"""

from bot.safety.flow import (
    SAFETY_ACTIONS,
    Safety,
    load_safety,
    safety_feature,
    validate_safety,
)

__all__ = ["SAFETY_ACTIONS", "Safety", "load_safety", "safety_feature", "validate_safety"]
