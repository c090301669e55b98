"""A skipped test fails the suite (tests/no_silent_skips.py), so a missing extra cannot shrink it quietly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT


def test_a_test_that_skips_fails_naming_why(tmp_path: Path) -> None:
    probe = tmp_path / "test_probe.py"
    probe.write_text(
        "import pytest\n"
        "def test_imports_a_missing_extra():\n    pytest.importorskip('no_such_extra_installed')\n"
        "def test_passes():\n    assert True\n"
    )
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:hydra_pytest",
        "-p",
        "tests.no_silent_skips",
    ]
    completed = subprocess.run(
        [*command, "-c", "/dev/null", "--rootdir", str(tmp_path), str(probe)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 1, completed.stdout
    assert "1 failed, 1 passed" in completed.stdout
    assert "skipped, and a skip shows nothing" in completed.stdout and "no_such_extra_installed" in completed.stdout
