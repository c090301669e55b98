"""The stack's S3 API as a process, killed (SIGKILL) just before its Nth step that changes state.

Run by tests/test_s3_kill_points.py as `python -m tests.s3_crash_server --kill-at N --progress FILE
-- <the server's own arguments>`. The steps counted are every one a restart and a write-through
take: restoring each saved object, sweeping each interrupted write, starting to listen, writing
the ready file, and every fsync, rename and unlink (the data, its directory, the ready file).
Between two of them nothing durable happens, so killing before each, for every N of a restart and
the first writes after it, covers every state a crash can leave. Each step is logged to FILE
before it runs ("N what"), and "kill N" just before the kill. With --kill-at 0 nothing is killed.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

LISTEN = "listen"
READY = "ready"


def count_steps(kill_at: int, progress: Path) -> None:
    import werkzeug.serving

    from dataset_pipeline import s3server

    counter = itertools.count(1)
    lock = threading.Lock()

    def tick(what: str) -> None:
        with lock, progress.open("a") as log:
            number = next(counter)
            log.write(f"{number} {what}\n")
            if number == kill_at:
                log.write(f"kill {number}\n")
                log.flush()
                os.kill(os.getpid(), signal.SIGKILL)

    def counted(original: Callable[..., Any], describe: Callable[..., str]) -> Callable[..., Any]:
        @functools.wraps(original)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            tick(describe(*args, **kwargs))
            return original(*args, **kwargs)

        return wrapper

    os.fsync = counted(os.fsync, lambda *_: "fsync")
    os.replace = counted(os.replace, lambda source, target, **_: f"rename {Path(target).name}")
    os.unlink = counted(os.unlink, lambda path, **_: f"unlink {Path(path).name}")
    restore_one = s3server.ObjectStore._restore_one
    s3server.ObjectStore._restore_one = counted(  # type: ignore[method-assign]
        restore_one, lambda _self, _backend, bucket, path: f"restore {bucket}/{path.name}"
    )
    werkzeug.serving.make_server = counted(werkzeug.serving.make_server, lambda *_, **__: LISTEN)
    s3server.write_ready_file = counted(s3server.write_ready_file, lambda *_, **__: READY)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kill-at", type=int, required=True)
    parser.add_argument("--progress", type=Path, required=True)
    parser.add_argument("server_args", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    count_steps(args.kill_at, args.progress)
    from dataset_pipeline import s3server

    s3server.main([arg for arg in args.server_args if arg != "--"])


if __name__ == "__main__":
    main()
