"""Logging set up once per process, with a last line of defence against personal data."""

from __future__ import annotations

import logging
import os
import sys
import traceback

from pydantic import ValidationError

from shared.privacy import describe_error, redact


class RedactingFilter(logging.Filter):
    """Masks NIK/No. KK-like numbers and phone numbers in every record, and a traceback's
    validation errors say where and what kind of problem, never the input they quote.

    Code must not log personal data in the first place; this filter catches the mistake
    (an exception message quoting a citizen's input, say) before it reaches a log file.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            error = record.exc_info[1]
            if error is not None and _validation_in(error):
                record.exc_text = _traceback_text(error)
            else:
                record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def _chain(error: BaseException) -> list[BaseException]:
    """``error`` and what it was raised from or during, the first cause first."""
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or (
            None if current.__suppress_context__ else current.__context__
        )
    return chain[::-1]


def _validation_in(error: BaseException) -> bool:
    return any(isinstance(each, ValidationError) for each in _chain(error))


def _traceback_text(error: BaseException) -> str:
    """The traceback as Python prints it, each exception's line as :func:`describe_error`
    says it (a validation error's text quotes its input)."""
    parts: list[str] = []
    for each in _chain(error):
        if parts:
            parts.append(
                "\nThe above exception was the direct cause of the following exception:\n\n"
                if each.__cause__ is not None
                else "\nDuring handling of the above exception, another exception occurred:\n\n"
            )
        stack = "".join(traceback.format_tb(each.__traceback__))
        parts.append(f"Traceback (most recent call last):\n{stack}{describe_error(each)}")
    return "".join(parts)


def setup_logging(service: str, level: str | None = None) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter(f"%(asctime)s %(levelname)-7s {service} %(name)s: %(message)s")
    )
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level or os.environ.get("ADMINDUK_LOG_LEVEL", "INFO"))
    # Libraries that log request details at INFO would flood the log.
    for noisy in ("httpx", "uvicorn.access", "faststream.access.nats", "nats"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
