"""No two modules of a package import each other, however they import: the import-linter contract
`no-import-cycles` (pyproject.toml) holds for the product, and reports a cycle when there is one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO_ROOT

CONTRACT_ID = "no-import-cycles"
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def importlinter_config() -> dict[str, Any]:
    config: dict[str, Any] = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return dict(config["tool"]["importlinter"])


def the_contract() -> dict[str, Any]:
    (contract,) = [c for c in importlinter_config()["contracts"] if c.get("id") == CONTRACT_ID]
    return dict(contract)


def lint_imports(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo", *args],
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_contract_covers_every_package_of_the_product_with_no_exceptions() -> None:
    contract = the_contract()
    assert contract["type"] == "acyclic_siblings"
    assert sorted(contract["ancestors"]) == sorted(importlinter_config()["root_packages"])
    assert {"dataset_pipeline", "shared_tasks"} <= set(contract["ancestors"])
    assert not {"ignore_imports", "skip_descendants", "depth"} & set(contract), "every module, at every depth"


def test_the_product_has_no_import_cycle() -> None:
    completed = lint_imports(REPO_ROOT, "--contract", CONTRACT_ID)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "No import cycles inside a package KEPT" in completed.stdout


def write_package(root: Path, files: dict[str, str]) -> None:
    for name, text in {"loopy/__init__.py": "", **files}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        (path.parent / "__init__.py").touch()
        path.write_text(text)


def check_package(root: Path) -> subprocess.CompletedProcess[str]:
    """The project's own contract, over the package `loopy` under `root`."""
    contract = {**the_contract(), "ancestors": ["loopy"]}
    lines = ['[tool.importlinter]\nroot_packages = ["loopy"]\n\n[[tool.importlinter.contracts]]\n']
    lines += [f"{key} = {json.dumps(value)}\n" for key, value in contract.items()]  # JSON strings and lists are TOML
    (root / "importlinter.toml").write_text("".join(lines))
    return lint_imports(root, "--config", "importlinter.toml", PYTHONPATH=str(root))


CYCLES = {
    "at import": {"loopy/a.py": "from loopy import b\n", "loopy/b.py": "from loopy import a\n"},
    "in a function": {"loopy/a.py": "from loopy import b\n", "loopy/b.py": "def later():\n    from loopy import a\n"},
    "for type checking only": {
        "loopy/a.py": "from loopy import b\n",
        "loopy/b.py": "from typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n    from loopy.a import A\n",
    },
    "round three modules": {
        "loopy/a.py": "import loopy.b\n",
        "loopy/b.py": "import loopy.c\n",
        "loopy/c.py": "import loopy.a\n",
    },
    "between sub-packages": {"loopy/x/one.py": "import loopy.y.two\n", "loopy/y/two.py": "import loopy.x.one\n"},
    "inside a sub-package": {"loopy/x/one.py": "import loopy.x.two\n", "loopy/x/two.py": "import loopy.x.one\n"},
}


@pytest.mark.parametrize("files", CYCLES.values(), ids=CYCLES.keys())
def test_a_cycle_is_reported_naming_its_package(files: dict[str, str], tmp_path: Path) -> None:
    write_package(tmp_path, files)
    completed = check_package(tmp_path)
    assert completed.returncode == 1, completed.stdout + completed.stderr
    package = "loopy.x" if all(name.startswith("loopy/x/") for name in files) else "loopy"
    assert f"No cycles are allowed in {package}." in completed.stdout


def test_imports_that_point_one_way_keep_the_contract(tmp_path: Path) -> None:
    write_package(
        tmp_path,
        {
            "loopy/a.py": "import loopy.b\nimport loopy.x.one\n",
            "loopy/b.py": "def later():\n    import loopy.c\n",
            "loopy/c.py": "",
            "loopy/x/one.py": "import loopy.x.two\nimport loopy.c\n",
            "loopy/x/two.py": "",
        },
    )
    completed = check_package(tmp_path)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "KEPT" in completed.stdout
