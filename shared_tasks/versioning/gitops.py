"""Git through its CLI, with credentials that never touch a URL, a file, argv or a log.

Credentials reach git through an env-reading credential helper configured with
GIT_CONFIG_COUNT/KEY/VALUE environment variables: the helper's text names only the
variables, the values stay in the environment of the git process.
"""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from shared_tasks.project.redact import Redactor
from shared_tasks.project.settings import Settings

log = logging.getLogger(__name__)

# Reads the credentials from the environment at the moment git asks for them, and answers only
# for the origin itself: git names the protocol, host (with port) and path it wants credentials
# for, and a redirect to anywhere else gets none. (The helper is also configured for the origin's
# URL only; this check holds even where git's own URL matching would be looser.)
CREDENTIAL_HELPER = (
    '!f() { test "$1" = get || exit 0; p=; h=; u=; '
    'while IFS= read -r line && test -n "$line"; do case "$line" in '
    'protocol=*) p="${line#protocol=}";; host=*) h="${line#host=}";; path=*) u="${line#path=}";; esac; done; '
    'test "$p" = "$PIPELINE_GIT_CREDENTIAL_PROTOCOL" && test "$h" = "$PIPELINE_GIT_CREDENTIAL_HOST" '
    '&& test "$u" = "$PIPELINE_GIT_CREDENTIAL_PATH" || exit 0; '
    'test -n "$GIT_SYNC_USERNAME" && echo "username=$GIT_SYNC_USERNAME"; '
    'test -n "$GIT_SYNC_PASSWORD" && echo "password=$GIT_SYNC_PASSWORD"; }; f'
)
AUTH_FAILURE_MARKERS = (
    "authentication failed",
    "could not read username",
    "could not read password",
    "terminal prompts disabled",
    "the requested url returned error: 401",
    "the requested url returned error: 403",
    "permission denied (publickey)",
)
# Inherited from a surrounding git process (e.g. a hook), these would point git elsewhere.
INHERITED_GIT_VARIABLES = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_NAMESPACE",
    "GIT_PREFIX",
    "GIT_QUARANTINE_PATH",
)
RACE_MARKERS = ("cannot lock ref", "failed to update ref", "incorrect old value", "stale info")
TRAILER_SEPARATOR = "\x1f"
RECORD_SEPARATOR = "\x1e"


class GitError(RuntimeError):
    """A git command failed; the message is already redacted."""


class GitAuthError(GitError):
    """The origin refused the credentials (or none were given)."""


@dataclass(frozen=True)
class PushOutcome:
    accepted: bool
    detail: str


class Git:
    """Runs git in one working directory with the pipeline's identity and credentials."""

    def __init__(self, settings: Settings, cwd: Path, redactor: Redactor) -> None:
        self.settings = settings
        self.cwd = cwd
        self.redact = redactor
        self._env = self._environment()

    def _environment(self) -> dict[str, str]:
        settings = self.settings
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith("GIT_CONFIG_") and key not in INHERITED_GIT_VARIABLES
        }
        scope = credential_scope(settings.git_url)
        config = [
            ("credential.helper", ""),
            *([(f"credential.{scope.url}.helper", CREDENTIAL_HELPER)] if scope else []),
            ("credential.useHttpPath", "true"),
            ("safe.directory", str(self.cwd)),
            ("core.askPass", ""),
            ("advice.detachedHead", "false"),
            ("init.defaultBranch", settings.git_branch),
        ]
        env["GIT_CONFIG_COUNT"] = str(len(config))
        for index, (key, value) in enumerate(config):
            env[f"GIT_CONFIG_KEY_{index}"] = key
            env[f"GIT_CONFIG_VALUE_{index}"] = value
        env.update(
            GIT_TERMINAL_PROMPT="0",
            GIT_ASKPASS="",
            SSH_ASKPASS="",
            GIT_AUTHOR_NAME=settings.git_author_name,
            GIT_AUTHOR_EMAIL=settings.git_author_email,
            GIT_COMMITTER_NAME=settings.git_author_name,
            GIT_COMMITTER_EMAIL=settings.git_author_email,
            LC_ALL="C",
        )
        if scope is not None:
            env.update(
                PIPELINE_GIT_CREDENTIAL_PROTOCOL=scope.protocol,
                PIPELINE_GIT_CREDENTIAL_HOST=scope.host,
                PIPELINE_GIT_CREDENTIAL_PATH=scope.path,
            )
        if settings.git_username:
            env["GIT_SYNC_USERNAME"] = settings.git_username
        if settings.git_password is not None:
            env["GIT_SYNC_PASSWORD"] = settings.git_password.get_secret_value()
        return env

    def run(
        self,
        *args: str,
        input_text: str | None = None,
        check: bool = True,
        cwd: Path | None = None,
        extra_env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        env = {**self._env, **extra_env} if extra_env else self._env
        log.debug("git %s", " ".join(args))
        completed = subprocess.run(
            ["git", *args],
            cwd=cwd or self.cwd,
            env=env,
            input=input_text,
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            check=False,
        )
        if check and completed.returncode != 0:
            raise self._error(args, completed)
        return completed

    def _error(self, args: Sequence[str], completed: subprocess.CompletedProcess[str]) -> GitError:
        stderr = self.redact(completed.stderr.strip())
        command = self.redact(" ".join(args[:2]))
        if any(marker in stderr.lower() for marker in AUTH_FAILURE_MARKERS):
            return GitAuthError(
                f"git {command}: the origin {self.redact(self.settings.git_url)} refused the "
                "credentials; check GIT_SYNC_USERNAME and GIT_SYNC_PASSWORD "
                f"(git said: {stderr.splitlines()[-1] if stderr else 'nothing'})"
            )
        return GitError(f"git {command} failed (exit {completed.returncode}): {stderr}")

    def output(self, *args: str) -> str:
        return self.run(*args).stdout.strip()

    # Repository-level operations -------------------------------------------------------

    def clone(self, target: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        self.run(
            "clone",
            "--quiet",
            "--branch",
            self.settings.git_branch,
            "--single-branch",
            "--",
            self.settings.git_url,
            str(target),
            cwd=target.parent,
        )

    def fetch(self) -> None:
        branch = self.settings.git_branch
        self.run(
            "fetch",
            "--quiet",
            "--no-tags",
            "origin",
            f"+refs/heads/{branch}:refs/remotes/origin/{branch}",
        )

    @property
    def origin_ref(self) -> str:
        return f"refs/remotes/origin/{self.settings.git_branch}"

    def rev(self, ref: str) -> str:
        return self.output("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")

    def reset_hard(self, ref: str) -> None:
        """The work tree and the branch at `ref`, whatever a killed step left changed in the work tree."""
        self.run("checkout", "--quiet", "--force", "-B", self.settings.git_branch, ref)
        self.run("reset", "--quiet", "--hard", ref)

    def show(self, rev: str, path: str) -> str:
        return self.run("show", f"{rev}:{path}").stdout

    def commit_paths(self, message: str, paths: Sequence[str]) -> str:
        self.run("add", "--", *paths)
        self.run("commit", "--quiet", "--no-verify", "--file", "-", "--only", "--", *paths, input_text=message)
        return self.rev("HEAD")

    def push(self) -> PushOutcome:
        """Push HEAD to the branch; a rejection because the origin moved is an outcome, not an error."""
        branch = self.settings.git_branch
        completed = self.run("push", "--porcelain", "origin", f"HEAD:refs/heads/{branch}", check=False)
        if completed.returncode == 0:
            return PushOutcome(True, "accepted")
        rejected_lines = [line for line in completed.stdout.splitlines() if line.startswith("!")]
        if rejected_lines and all(_lost_race(line, completed.stderr) for line in rejected_lines):
            return PushOutcome(False, self.redact(rejected_lines[0]))
        raise self._error(("push", "origin"), completed)

    def trailers_log(
        self, ref: str, *paths: str, message_contains: str | None = None, max_count: int | None = None
    ) -> list[tuple[str, str, str, dict[str, str]]]:
        """(commit, ISO time, author, trailers) of every commit on `ref` that touched one of `paths`, newest first.

        `message_contains` lets git skip the commits whose message lacks that text, so a look-up
        of one run parses its own commits rather than the whole history.
        """
        fmt = f"%H{TRAILER_SEPARATOR}%cI{TRAILER_SEPARATOR}%an <%ae>{TRAILER_SEPARATOR}%(trailers:only,unfold)"
        fmt += RECORD_SEPARATOR
        grep = ["--fixed-strings", f"--grep={message_contains}"] if message_contains else []
        grep += [f"--max-count={max_count}"] if max_count is not None else []
        out = self.run("log", f"--format={fmt}", *grep, ref, "--", *paths).stdout
        entries = []
        for record in out.split(RECORD_SEPARATOR):
            record = record.strip("\n")
            if not record:
                continue
            commit, time, author, trailer_text = record.split(TRAILER_SEPARATOR, 3)
            entries.append((commit, time, author, parse_trailers(trailer_text)))
        return entries


@dataclass(frozen=True)
class CredentialScope:
    """The origin as git names it when it asks a helper for credentials."""

    protocol: str
    host: str
    path: str

    @property
    def url(self) -> str:
        return f"{self.protocol}://{self.host}/{self.path}"


def credential_scope(git_url: str) -> CredentialScope | None:
    """Where credentials may go: the origin's scheme, host and port, and path (http(s) origins only)."""
    parts = urlsplit(git_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    host = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
    return CredentialScope(parts.scheme, host, parts.path.strip("/"))


def _lost_race(porcelain_line: str, stderr: str) -> bool:
    """True when a push was refused only because the branch moved under it."""
    if "[rejected]" in porcelain_line:
        return "fetch first" in porcelain_line or "non-fast-forward" in porcelain_line
    if "[remote rejected]" in porcelain_line:
        # The branch moved between the negotiation and the ref update on the origin.
        detail = f"{porcelain_line}\n{stderr}".lower()
        return any(marker in detail for marker in RACE_MARKERS)
    return False


def parse_trailers(text: str) -> dict[str, str]:
    trailers = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip():
            trailers[key.strip()] = value.strip()
    return trailers
