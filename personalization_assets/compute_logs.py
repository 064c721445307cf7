"""Step stdout/stderr capture (the UI's stdout/stderr view) without two helper processes per stream
(dagster.yaml `compute_logs`).

Dagster's `LocalComputeLogManager` redirects the run process's stdout and stderr into files under
`$DAGSTER_HOME/storage` and, to keep the terminal showing them, starts `tail -F` on each file plus a Python
watcher process that kills the tail if the run process dies: four process starts a run (0.3-0.4 s of a sample
`personalize run`'s seven runs on the 2-core development machine, the watchers each starting an interpreter).
This manager captures into the same files, read by the UI exactly as before, and copies them to the terminal
from a thread of the run's process, which cannot outlive it.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Generator, Iterator, Sequence
from contextlib import contextmanager
from typing import IO, Any

from dagster import Field, Float, StringSource
from dagster._core.execution.compute_logs import redirect_to_file
from dagster._core.storage.compute_log_manager import CapturedLogContext, ComputeIOType
from dagster._core.storage.local_compute_log_manager import IO_TYPE_EXTENSION, LocalComputeLogManager
from dagster._utils import ensure_file, touch_file

MIRROR_POLL_SECONDS = 0.25  # `tail -F` checks once a second


class MirroredComputeLogManager(LocalComputeLogManager):
    """`LocalComputeLogManager` with the terminal copy made by a thread (see the module docstring).

    dagster.yaml::

        compute_logs:
          module: personalization_assets.compute_logs
          class: MirroredComputeLogManager

    `base_dir` defaults to Dagster's own place for compute logs, `$DAGSTER_HOME/storage`."""

    @classmethod
    def config_type(cls) -> dict[str, Any]:
        return {
            "base_dir": Field(StringSource, is_required=False),
            "polling_timeout": Field(Float, is_required=False),
        }

    @classmethod
    def from_config_value(cls, inst_data, config_value) -> MirroredComputeLogManager:  # noqa: ANN001
        values = dict(config_value)
        if not values.get("base_dir"):
            home = os.environ.get("DAGSTER_HOME")
            if not home:
                raise ValueError("MirroredComputeLogManager: set DAGSTER_HOME or compute_logs.config.base_dir")
            values["base_dir"] = os.path.join(home, "storage")
        return cls(inst_data=inst_data, **values)

    @contextmanager
    def capture_logs(self, log_key: Sequence[str]) -> Generator[CapturedLogContext, None, None]:
        outpath = self.get_captured_local_path(log_key, IO_TYPE_EXTENSION[ComputeIOType.STDOUT])
        errpath = self.get_captured_local_path(log_key, IO_TYPE_EXTENSION[ComputeIOType.STDERR])
        with mirrored_to_file(sys.stdout, outpath), mirrored_to_file(sys.stderr, errpath):
            yield CapturedLogContext(log_key)
        touch_file(self.complete_artifact_path(log_key))  # tells readers the capture is complete


@contextmanager
def mirrored_to_file(stream: IO[str], path: str) -> Iterator[None]:
    """Everything written to `stream` (its file descriptor: child processes' output too) goes to `path`, and
    is copied from there to where `stream` pointed before, while the block runs and once more at its end."""
    ensure_file(path)
    descriptor = _descriptor(stream)
    if descriptor is None:  # a stream without a file descriptor (a test runner's): captured only, like Dagster
        with redirect_to_file(stream, path):
            yield
        return
    terminal = os.dup(descriptor)
    stop = threading.Event()
    copier = threading.Thread(
        target=_copy_appended, args=(path, terminal, stop), name="compute-log-mirror", daemon=True
    )
    copier.start()
    try:
        with redirect_to_file(stream, path):
            yield
    finally:
        stop.set()
        copier.join()
        os.close(terminal)


def _descriptor(stream: IO[str]) -> int | None:
    try:
        return stream.fileno()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is an OSError and a ValueError
        return None


def _copy_appended(path: str, terminal: int, stop: threading.Event) -> None:
    """Copy what is appended to `path` to the descriptor `terminal` until `stop`, then what is left."""
    with open(path, "rb") as captured:
        while True:
            stopping = stop.wait(MIRROR_POLL_SECONDS)
            try:
                while chunk := captured.read(1 << 16):
                    view = memoryview(chunk)
                    while view:
                        view = view[os.write(terminal, view) :]
            except OSError:  # the terminal went away (a closed pipe): the capture itself goes on
                return
            if stopping:
                return
