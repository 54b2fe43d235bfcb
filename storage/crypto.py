"""Encryption at rest for everything a person writes (Fernet: AES-128-CBC + HMAC-SHA256).

The key comes from `ENCRYPTION_KEY`, else from a key file in the data directory, created on
first start with permissions 0600. Several keys may be given (comma-separated, newest first)
so rotation can read old rows while writing new ones.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

log = logging.getLogger(__name__)


class WrongKeyError(RuntimeError):
    """The configured key cannot read what this database holds."""


class Cipher:
    """Encrypts and decrypts text with the newest key; decrypts with any given key."""

    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise ValueError("at least one key is needed")
        try:
            self._fernet = MultiFernet([Fernet(k.strip().encode()) for k in keys])
        except ValueError as exc:
            raise WrongKeyError(
                "ENCRYPTION_KEY is not a valid key (expected 32 url-safe base64 bytes; "
                "make one with `kindbot keygen`)"
            ) from exc

    @classmethod
    def from_string(cls, keys: str) -> Cipher:
        return cls([k for k in keys.split(",") if k.strip()])

    def encrypt(self, text: str) -> str:
        return self._fernet.encrypt(text.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except InvalidToken as exc:
            raise WrongKeyError("stored data cannot be decrypted with the configured key") from exc

    def rotate(self, token: str) -> str:
        """Re-encrypt `token` under the newest key."""
        try:
            return self._fernet.rotate(token.encode("ascii")).decode("ascii")
        except InvalidToken as exc:
            raise WrongKeyError("stored data cannot be decrypted with the configured key") from exc


def new_key() -> str:
    return Fernet.generate_key().decode("ascii")


def load_or_create_key(configured: str | None, key_file: Path) -> str:
    """The configured key, else the key file's, else a fresh key written to the key file."""
    if configured:
        return configured
    if key_file.exists():
        return key_file.read_text(encoding="ascii").strip()
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key = new_key()
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(key + "\n")
    log.warning(
        "No ENCRYPTION_KEY set: generated a new key in %s (mode 0600). Back it up: without "
        "it, stored entries cannot be read.",
        key_file,
    )
    return key
