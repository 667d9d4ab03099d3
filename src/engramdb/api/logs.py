"""Secrets never reach a log line. A client that sends its key in the query string (``?api_key=…``, which
Engram refuses) would otherwise see it written whole by the server's access log; so every record of the
server's loggers is passed through :func:`redact` first: the values of secret-named query parameters, and
anything shaped like an Engram key or a bearer token, become ``[redacted]``."""

from __future__ import annotations

import logging
import re
from typing import Any

REDACTED = "[redacted]"
# Query parameters (and key=value pairs) whose value is a credential, by their name.
_SECRET_PARAM = re.compile(
    r"(?i)((?:^|[?&;\s])(?:api[_-]?key|key|token|access[_-]?token|secret|password|passwd|auth|authorization"
    r"|signature|sig|webhook[_-]?secret)=)[^&;\s\"']*"
)
_ENGRAM_KEY = re.compile(r"egm_[A-Za-z0-9]+_[A-Za-z0-9]+")
_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+")
_WEBHOOK_SECRET = re.compile(r"whsec_[A-Za-z0-9+/=]+")
LOGGERS = ("uvicorn.access", "uvicorn.error", "uvicorn", "engramdb")


def redact(text: str) -> str:
    text = _SECRET_PARAM.sub(lambda m: m.group(1) + REDACTED, text)
    text = _ENGRAM_KEY.sub(REDACTED, text)
    text = _WEBHOOK_SECRET.sub(REDACTED, text)
    return _BEARER.sub(lambda m: m.group(1) + REDACTED, text)


def _clean(value: Any) -> Any:
    return redact(value) if isinstance(value, str) else value


class RedactSecrets(logging.Filter):
    """Rewrites a record's message and arguments before any handler formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_clean(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: _clean(v) for k, v in record.args.items()}
        return True


def _attach(filterer: logging.Filterer) -> None:
    if not any(isinstance(f, RedactSecrets) for f in filterer.filters):
        filterer.addFilter(RedactSecrets())


def install() -> None:
    """Attach the filter to the server's loggers and to every handler they and the root logger write
    through (a logger's own filter does not see what its children propagate; a handler's does). Called
    once the logging configuration exists (uvicorn sets it up before it calls the app factory)."""
    for name in (*LOGGERS, None):
        logger = logging.getLogger(name)
        if name is not None:
            _attach(logger)
        for handler in logger.handlers:
            _attach(handler)
