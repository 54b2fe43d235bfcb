"""The dialog engine: knows dialogs, users and storage, and nothing about Telegram."""
