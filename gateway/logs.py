"""Process output: one JSON object per line, with no secret and no personal data in it.

Every log record (ours, aiohttp's, asyncpg's, tracebacks included) passes through
`JsonFormatter`, which removes anything token-shaped and every email address.
The access log is ours: method, path (tokens and emails removed), the names of
the query parameters but never their values, status, duration and the request
id, the key that joins a line to its provisioning-log row and to the metrics.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from gateway.tokens import TOKEN_PATTERN

ACCESS_LOGGER = "gateway.access"
REQUEST_ID_HEADER = "X-Request-Id"
# Anything shaped like an address: the local part and the domain, however odd.
EMAIL_PATTERN = re.compile(r"[^\s\"'<>@,;:()\[\]\\/]+@[^\s\"'<>@,;:()\[\]\\/]+")
_FIELDS = ("request_id", "method", "path", "query_keys", "status", "duration_ms", "remote")


def scrub(text: str) -> str:
    """Tokens and email addresses out of free text."""
    return EMAIL_PATTERN.sub("[email]", TOKEN_PATTERN.sub("[redacted]", text))


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, known fields, traceback."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": scrub(record.getMessage()),
        }
        for name in _FIELDS:
            if name in record.__dict__:
                line[name] = record.__dict__[name]
        if record.exc_info:
            line["traceback"] = scrub(self.formatException(record.exc_info))
        try:
            # ASCII, as before: orjson writes UTF-8, so escape what is not ASCII.
            text = orjson.dumps(line).decode()
        except TypeError:  # a lone surrogate or a huge integer
            return json.dumps(line, ensure_ascii=True)
        return text if text.isascii() else json.dumps(line, ensure_ascii=True)


def configure_logging(stream: TextIO | None = None, level: int = logging.INFO) -> logging.Handler:
    """Send every record to `stream` (stdout) as scrubbed JSON lines; return the handler."""
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # aiohttp's own access logger would print the full URL; ours replaces it.
    logging.getLogger("aiohttp.access").disabled = True
    return handler


class AccessLogger(AbstractAccessLogger):
    """aiohttp's access log, without the query values or anything token- or email-shaped."""

    def __init__(self, logger: logging.Logger, log_format: str) -> None:
        super().__init__(logging.getLogger(ACCESS_LOGGER), log_format)

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        fields = {
            "request_id": response.headers.get(REQUEST_ID_HEADER),
            "method": request.method,
            "path": scrub(request.path)[:512],
            "query_keys": sorted({scrub(k)[:64] for k in request.query})[:32],
            "status": response.status,
            "duration_ms": round(time * 1000, 2),
            "remote": request.remote,
        }
        # makeRecord and handle, as Logger.info would, without its walk of the stack
        # for the caller's file and line: the access log is written on every request.
        record = self.logger.makeRecord(
            ACCESS_LOGGER,
            logging.INFO,
            __file__,
            0,
            "%s %s %s",
            (request.method, fields["path"], response.status),
            None,
            extra=fields,
        )
        self.logger.handle(record)

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)
