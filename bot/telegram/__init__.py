"""The Telegram adapter: a thin layer of PTB over the engine (see docs/architecture.md)."""
