"""The stack's S3 API: moto's server as a process of its own, persisted to the stack folder."""

from __future__ import annotations

import sys
import urllib.error
import urllib.request
from pathlib import Path

from dataset_pipeline.process import ProcessService, StackError, process_environment
from dataset_pipeline.s3server import FAKE_CREDENTIALS

START_TIMEOUT_SECONDS = 60


class S3Service(ProcessService):
    """The server writes its own ready file once it serves what the folder held (and removes it on exit)."""

    name = "s3"
    title = "the S3 API"
    port_option = "--s3-port"

    def __init__(self, root: Path, port: int) -> None:
        super().__init__(root / "s3.ready", root, port)
        self.state_dir = root / "s3"

    def answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/moto-api/", timeout=5):
                return True
        except (urllib.error.URLError, OSError):
            return False

    def alive(self) -> bool:
        return self.running() is not None and self.answers()

    def up(self) -> None:
        if self.alive():
            return
        self.ready_file.remove()
        self.check_port_free()
        command = [sys.executable, "-m", "dataset_pipeline.s3server", "--port", str(self.configured_port)]
        command += ["--state-dir", str(self.state_dir), "--ready-file", str(self.ready_file.path)]
        process = self.start_process(self.name, command, env=process_environment(**FAKE_CREDENTIALS))
        try:
            late = f"the S3 API did not become ready in {START_TIMEOUT_SECONDS} s; see {self.log_path(self.name)}"
            self.wait_until_ready({self.name: process}, self.alive, START_TIMEOUT_SECONDS, 0.1, late)
        except StackError:
            self.stop()
            if process.poll() is None:
                process.kill()
                process.wait()
            raise

    def down(self) -> None:
        self.stop()
