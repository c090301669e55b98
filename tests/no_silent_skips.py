"""A test that skips has not shown anything: here a skip is a failure, naming why it skipped.

Every dependency a test needs is installed by `make test`; a missing one must turn the suite red,
not shrink it quietly (`importorskip`, `skipif` on a missing tool).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"{item.nodeid} skipped, and a skip shows nothing: {reason}"
