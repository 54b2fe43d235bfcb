"""Encryption at rest for everything a person writes: AES-256-GCM (authenticated).

The key comes from `ENCRYPTION_KEY`, else from a key file in the data directory, created on
first start with permissions 0600. Several keys may be given (comma-separated, newest first)
so rotation can read old rows while writing new ones. Each token names its key by a short
fingerprint, so decryption picks the right key without trial and error.

AES-GCM rather than Fernet: one C call per operation instead of CBC + a Python-level HMAC,
which keeps a dialog step's crypto cost to a few microseconds (see bench/engine.py).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from storage.files import private_dir, write_private

log = logging.getLogger(__name__)

PREFIX = "k1."
NONCE_BYTES = 12


class WrongKeyError(RuntimeError):
    """The configured key cannot read what this database holds."""


class MalformedKeyError(WrongKeyError):
    """The configured text is not a key at all (so the message can say where it came from)."""


def _fingerprint(raw: bytes) -> bytes:
    return hashlib.sha256(b"kindbot-key-id" + raw).digest()[:4]


def _decode_key(key: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(key.strip().encode("ascii"))
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raw = b""
    if len(raw) != 32:
        raise MalformedKeyError(
            "ENCRYPTION_KEY is not a valid key (expected 32 url-safe base64 bytes; "
            "make one with `kindbot keygen`)"
        )
    return raw


class Cipher:
    """Encrypts text with the newest key; decrypts with whichever given key wrote it."""

    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise ValueError("at least one key is needed")
        raws = [_decode_key(k) for k in keys]
        self._current = (_fingerprint(raws[0]), AESGCM(raws[0]))
        self._by_id = {_fingerprint(raw): AESGCM(raw) for raw in reversed(raws)}

    @classmethod
    def from_string(cls, keys: str) -> Cipher:
        return cls([k for k in keys.split(",") if k.strip()])

    def encrypt(self, text: str) -> str:
        key_id, aead = self._current
        nonce = os.urandom(NONCE_BYTES)
        sealed = aead.encrypt(nonce, text.encode("utf-8"), key_id)
        return PREFIX + base64.urlsafe_b64encode(key_id + nonce + sealed).decode("ascii")

    def decrypt(self, token: str) -> str:
        try:
            if not token.startswith(PREFIX):
                raise ValueError("not a kindbot token")
            blob = base64.urlsafe_b64decode(token[len(PREFIX) :].encode("ascii"))
            key_id, nonce, sealed = blob[:4], blob[4 : 4 + NONCE_BYTES], blob[4 + NONCE_BYTES :]
            aead = self._by_id.get(key_id)
            if aead is None:
                raise WrongKeyError("stored data was written with a key that is not configured")
            return aead.decrypt(nonce, sealed, key_id).decode("utf-8")
        except WrongKeyError:
            raise
        except (InvalidTag, ValueError, binascii.Error, UnicodeError) as exc:
            raise WrongKeyError("stored data cannot be decrypted with the configured key") from exc

    def is_current(self, token: str) -> bool:
        """Whether `token` was written with the newest key."""
        try:
            blob = base64.urlsafe_b64decode(token[len(PREFIX) :].encode("ascii"))
        except (binascii.Error, ValueError):
            return False
        return token.startswith(PREFIX) and blob[:4] == self._current[0]

    def rotate(self, token: str) -> str:
        """Re-encrypt `token` under the newest key."""
        return self.encrypt(self.decrypt(token))


def pending_key_file(key_file: Path) -> Path:
    """Where `kindbot rotate-key` keeps the new key until the database is re-encrypted."""
    return key_file.with_name(key_file.name + ".new")


def new_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode("ascii")


def load_or_create_key(configured: str | None, key_file: Path) -> str:
    """The configured key, else the key file's, else a fresh key written to the key file."""
    if configured:
        return configured
    if key_file.exists():
        return key_file.read_text(encoding="ascii").strip()
    private_dir(key_file.parent)
    key = new_key()
    write_private(key_file, (key + "\n").encode("ascii"), exclusive=True)
    log.warning(
        "No ENCRYPTION_KEY set: generated a new key in %s (mode 0600). Back it up: without "
        "it, stored entries cannot be read.",
        key_file,
    )
    return key
