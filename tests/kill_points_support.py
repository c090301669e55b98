"""What the kill-point generators share: each operation that changes state, counted, the Nth killing
the process group (git commands that write, DVC operations, renames that make a file durable)."""

from __future__ import annotations

import itertools
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

READ_ONLY_GIT = {
    *("rev-parse", "log", "show", "cat-file", "ls-remote", "rev-list", "status", "diff"),
    *("ls-tree", "ls-files", "check-attr"),  # how the pointer is read from Git itself
}


def count_state_changes(kill_at: int, progress: Path, dvc_class: type) -> Iterator[None]:
    """Patch the operations that change state so that the `kill_at`-th kills the process group
    (never with 0); each is logged to `progress` as `op N what`. `dvc_class` is the DVC client in use."""
    import pathlib

    from shared_tasks.versioning.gitops import Git

    counter = itertools.count(1)

    def tick(what: str) -> None:
        number = next(counter)
        with progress.open("a") as log:
            log.write(f"op {number} {what}\n")
        if number == kill_at:
            os.killpg(0, signal.SIGKILL)

    def counted(original: Callable[..., Any], describe: Callable[..., str | None]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            what = describe(*args, **kwargs)
            if what is not None:
                tick(what)
            return original(*args, **kwargs)

        return wrapper

    git_run = Git.run
    Git.run = counted(git_run, lambda self, *args, **_: None if args[0] in READ_ONLY_GIT else f"git {args[0]}")  # type: ignore[method-assign]
    for name in ("pull", "add", "add_and_push", "push"):
        setattr(dvc_class, name, counted(getattr(dvc_class, name), lambda *_, _n=name, **__: f"dvc {_n}"))
    replace = pathlib.Path.replace
    pathlib.Path.replace = counted(replace, lambda self, target: f"rename {pathlib.Path(target).name}")  # type: ignore[method-assign]
    yield
