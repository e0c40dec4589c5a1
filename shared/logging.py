"""Logging set up once per process, with a last line of defence against personal data."""

from __future__ import annotations

import logging
import os
import sys

from shared.privacy import redact


class RedactingFilter(logging.Filter):
    """Masks NIK/No. KK-like numbers and phone numbers in every record.

    Code must not log personal data in the first place; this filter catches the mistake
    (an exception message quoting a citizen's input, say) before it reaches a log file.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


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
