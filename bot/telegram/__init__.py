"""The Telegram adapter: a thin layer of PTB over the engine (see DESIGN.md)."""
