"""Crisis safety: the screen on every message, the crisis pause, helplines, the safety plan.

`install(engine, safety, ...)` wires it into an engine; `load_safety(root, ...)` loads and
validates the data (pattern files per locale, helpline files per country).
"""

from bot.safety.flow import SAFETY_ACTIONS, Safety, install, load_safety, validate_safety

__all__ = ["SAFETY_ACTIONS", "Safety", "install", "load_safety", "validate_safety"]
