"""The parts of DVC's Python API this product relies on (`dvc.repo.Repo` is not a supported API).

DVC is pinned in uv.lock; these tests are the contract that a DVC upgrade must keep. They also
prove that the calls used never import hydra/omegaconf, which cannot load under the ANTLR 4.13
runtime that Dagster's asset selection needs (the lock file overrides DVC's 4.9.3 pin).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from shared_tasks.project.redact import Redactor
from shared_tasks.project.settings import Settings
from shared_tasks.run.steps import pull_data
from shared_tasks.run.workspace import Workspace
from shared_tasks.storage.pointer import Pointer, s3_object_url
from shared_tasks.versioning.dvcops import CACHE_TYPES, Dvc, repo_config
from tests.conftest import REPO_ROOT, TEST_BUCKET, bucket_listing

# Real Git origins, a real S3 API and real DVC in every test: the fast lane (-m "not slow") leaves them out.
pytestmark = pytest.mark.slow


def test_repo_config_overrides_cache_and_remote_without_writing_them(settings: Settings) -> None:
    config = repo_config(settings.model_copy(update={"dvc_remote_url": "s3://other/prefix"}))
    assert config["cache"] == {"dir": str(settings.cache_dir), "type": CACHE_TYPES}
    assert config["remote"]["storage"] == {"url": "s3://other/prefix", "endpointurl": settings.s3_endpoint_url}
    assert config["core"]["site_cache_dir"] == str(settings.site_cache_dir)
    pull_data(settings, "config-run")
    repo = Workspace.for_run(settings.work_root, "config-run").repo
    assert not (repo / ".dvc" / "config.local").exists()
    assert "endpointurl" not in (repo / ".dvc" / "config").read_text()


def test_add_push_checkout_pull_round_trip(settings: Settings, s3: object, tmp_path: Path) -> None:
    pull_data(settings, "api-run")
    repo = Workspace.for_run(settings.work_root, "api-run").repo
    dvc = Dvc(settings, repo, Redactor())
    text = dvc.data_path.read_text(encoding="utf-8")
    dvc.data_path.unlink()  # a link to a cache object: never written in place
    dvc.data_path.write_text(text + text.splitlines()[1].replace("1,", "999999,", 1) + "\n", encoding="utf-8")
    pointer, remote_url = dvc.add_and_push()
    assert remote_url == f"s3://{TEST_BUCKET}/datasets"
    key = s3_object_url(remote_url, pointer.md5).split(f"{TEST_BUCKET}/", 1)[1]
    assert key in bucket_listing(s3)
    assert Pointer.read(dvc.pointer_file) == pointer

    other = Dvc(settings, repo, Redactor(), cache_dir=tmp_path / "empty-cache")
    dvc.data_path.unlink()
    other.pull()  # nothing cached there: must come from the remote
    assert dvc.data_path.exists() and (tmp_path / "empty-cache" / "files" / "md5" / pointer.md5[:2]).is_dir()


def test_the_dvc_calls_used_never_import_hydra_or_omegaconf(settings_env: dict[str, str]) -> None:
    script = (
        "import sys, json\n"
        "from shared_tasks.project.settings import load_settings\n"
        "from shared_tasks.project.pipeline import run_pipeline\n"
        "from shared_tasks.versioning.history import verify\n"
        "version = run_pipeline(load_settings(), 'import-check')\n"
        "assert verify(load_settings(), version.commit).ok\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('hydra', 'omegaconf', 'antlr4'))))\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script], env=settings_env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300
    )
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout.strip().splitlines()[-1]) == []
