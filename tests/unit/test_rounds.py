"""A failed background round: an outage is one line, a bug keeps its traceback."""

from __future__ import annotations

import logging

import pytest
from asyncpg.exceptions import CannotConnectNowError

from shared.runtime.rounds import report_failed_round

log = logging.getLogger("rounds-test")


@pytest.mark.parametrize(
    "error",
    [ConnectionRefusedError(111, "refused"), CannotConnectNowError("starting up"), TimeoutError()],
)
def test_a_database_outage_is_a_warning_without_a_traceback(
    caplog: pytest.LogCaptureFixture, error: BaseException
) -> None:
    with caplog.at_level(logging.WARNING):
        report_failed_round(log, "issuance sweep", error)
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert record.exc_info is None
    assert type(error).__name__ in record.getMessage()


def test_any_other_failure_is_an_error_with_its_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    try:
        raise KeyError("bug")
    except KeyError as error:
        with caplog.at_level(logging.WARNING):
            report_failed_round(log, "issuance sweep", error)
    [record] = caplog.records
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None and record.exc_info[1] is not None
