"""Keep credentials out of every text this package emits (errors, logs, return values)."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable
from urllib.parse import quote

MASK = "***"
SECRET_ENV_NAMES = (
    "GIT_SYNC_PASSWORD",
    "GITSYNC_PASSWORD",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
)
_URL_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s@]+@")
_MIN_SECRET_LENGTH = 4


class Redactor:
    """Masks the known secret values and any user:password part of a URL."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: list[str] = []
        self.extend(secrets)

    def extend(self, secrets: Iterable[str]) -> None:
        values = {value for value in secrets if value and len(value) >= _MIN_SECRET_LENGTH}
        values |= {quote(value, safe="") for value in set(values)}
        # Longest first, so a secret containing another is masked whole.
        self._secrets = sorted(set(self._secrets) | values, key=len, reverse=True)

    @property
    def secrets(self) -> tuple[str, ...]:
        return tuple(self._secrets)

    @classmethod
    def from_environment(cls, extra: Iterable[str] = ()) -> Redactor:
        from_env = [os.environ.get(name, "") for name in SECRET_ENV_NAMES]
        return cls([*from_env, *extra])

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return _URL_USERINFO.sub(lambda match: f"{match['scheme']}{MASK}@", text)


class RedactingFilter(logging.Filter):
    """A logging filter that renders each record's message and redacts it."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self._redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self._redactor(record.getMessage())
        record.args = None
        return True
