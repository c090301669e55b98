"""One settings object from the environment; credentials never printable."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from pydantic import ValidationError

from shared_tasks.project.redact import MASK, RedactingFilter, Redactor
from shared_tasks.project.settings import Settings, load_settings
from tests.conftest import fake_secret, url_with_userinfo

TOKEN = fake_secret()


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PIPELINE_GIT_URL", "https://git.example.invalid/team/data.git")
    monkeypatch.setenv("PIPELINE_WORK_ROOT", str(tmp_path))
    monkeypatch.setenv("PIPELINE_GIT_BRANCH", "datasets")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9999")
    monkeypatch.setenv("GIT_SYNC_USERNAME", "bot")
    monkeypatch.setenv("GIT_SYNC_PASSWORD", TOKEN)
    settings = load_settings()
    assert settings.git_branch == "datasets"
    assert settings.s3_endpoint_url == "http://127.0.0.1:9999"
    assert settings.git_username == "bot"
    assert settings.git_password is not None and settings.git_password.get_secret_value() == TOKEN
    assert settings.cache_dir == tmp_path / "dvc-cache"
    assert settings.pointer_path == "data/employee_attrition.csv.dvc"
    assert TOKEN not in repr(settings)
    assert TOKEN not in settings.model_dump_json()


def test_gitsync_v4_credential_names_are_read_too(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GITSYNC_USERNAME", "bot4")
    monkeypatch.setenv("GITSYNC_PASSWORD", TOKEN)
    settings = Settings(git_url="https://git.example.invalid/r.git", work_root=tmp_path)
    assert settings.git_username == "bot4"
    assert settings.secret_values() == [TOKEN]


def test_an_env_file_fills_what_the_environment_lacks(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env_file = tmp_path / "settings.env"
    env_file.write_text(
        f"PIPELINE_GIT_URL=file:///srv/origin.git\nPIPELINE_WORK_ROOT={tmp_path}\nPIPELINE_GIT_BRANCH=fromfile\n"
    )
    monkeypatch.setenv("PIPELINE_GIT_BRANCH", "fromenv")
    settings = load_settings(env_file)
    assert settings.git_url == "file:///srv/origin.git"
    assert settings.git_branch == "fromenv"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("git_url", url_with_userinfo("bot", TOKEN, "git.example.invalid", "/r.git"), "must not carry credentials"),
        ("work_root", "relative/dir", "work_root must be an absolute path"),
        ("dataset_path", "../outside.csv", "relative path inside the repository"),
        ("dvc_remote_url", "bucket/prefix", "must be a URL"),
        ("push_attempts", 0, "greater than or equal to 1"),
    ],
    ids=["git_url with credentials", "relative work_root", "dataset_path outside", "remote url", "push_attempts"],
)
def test_bad_settings_are_refused_naming_the_field(tmp_path: Path, field: str, value: object, message: str) -> None:
    values: dict[str, object] = {"git_url": "file:///srv/origin.git", "work_root": tmp_path}
    values[field] = value
    with pytest.raises(ValidationError) as caught:
        Settings(**values)  # type: ignore[arg-type]
    text = str(caught.value)
    assert field in text and message in text
    assert TOKEN not in text


def test_missing_git_url_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PIPELINE_WORK_ROOT", str(tmp_path))
    with pytest.raises(ValidationError, match="git_url"):
        load_settings()


def test_redactor_masks_secrets_their_url_encoding_and_url_userinfo() -> None:
    secret = "p@ss/w:rd+1"
    redact = Redactor([secret])
    text = f"fatal: {secret} and p%40ss%2Fw%3Ard%2B1 at {url_with_userinfo('bot', 'x', 'host', '/r.git')}"
    cleaned = redact(text)
    assert secret not in cleaned and "p%40ss" not in cleaned
    assert "https://***@host/r.git" in cleaned
    assert cleaned.count(MASK) == 3


def test_redactor_reads_secrets_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_SYNC_PASSWORD", TOKEN)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-secret-value")
    redact = Redactor.from_environment()
    assert redact(f"{TOKEN} aws-secret-value") == f"{MASK} {MASK}"


def test_short_values_are_not_treated_as_secrets() -> None:
    assert Redactor(["ab"])("abc") == "abc"


def test_logging_filter_redacts_rendered_messages(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.redaction")
    handler = caplog.handler
    handler.addFilter(RedactingFilter(Redactor([TOKEN])))
    try:
        with caplog.at_level(logging.INFO, logger="test.redaction"):
            logger.info("token is %s", TOKEN)
    finally:
        handler.filters.clear()
    assert caplog.messages == [f"token is {MASK}"]


def test_orchestration_settings_load_without_a_repository(monkeypatch: pytest.MonkeyPatch) -> None:
    from shared_tasks.project.settings import OrchestrationSettings

    unset = OrchestrationSettings()
    assert unset.schedule == "@daily"
    assert unset.dataset_uri == "dvc://storage/data/employee_attrition.csv"
    monkeypatch.setenv("PIPELINE_DVC_REMOTE_URL", "s3://bucket/datasets/")
    monkeypatch.setenv("PIPELINE_SCHEDULE", "0 3 * * *")
    monkeypatch.setenv("PIPELINE_STEP_RETRIES", "11")
    with pytest.raises(ValueError, match="step_retries"):
        OrchestrationSettings()
    monkeypatch.setenv("PIPELINE_STEP_RETRIES", "3")
    monkeypatch.setenv("PIPELINE_SCHEDULE", " None ")
    assert OrchestrationSettings().schedule is None
    monkeypatch.setenv("PIPELINE_SCHEDULE", "0 3 * * *")
    configured = OrchestrationSettings()
    assert configured.dataset_uri == "s3://bucket/datasets/data/employee_attrition.csv"
    assert (configured.schedule, configured.step_retries) == ("0 3 * * *", 3)
