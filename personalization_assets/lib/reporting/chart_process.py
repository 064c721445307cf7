"""A second process for the report's charts. matplotlib holds the GIL while it lays out and rasterizes a figure, so
threads cannot draw two charts at once; a forked copy of the report process can, and it starts in milliseconds with
everything already imported. The report step forks it when it starts (before its own threads: the notebook's, the
PDF worker's) and hands it some charts once their data exist; it writes each PNG next to the report, where the PDF
worker and the notebook pick it up, and sends the bytes back::

    with ChartProcess() as helper:        # forked now; idle until it gets work
        helper.submit("funnel", partial(funnel_chart, funnel, segments), folder)
        ...                               # draw the other charts here meanwhile
        pngs = helper.results()           # {"funnel": b"\\x89PNG..."}

Where fork is not available (not POSIX) ``available`` is false and the caller draws every chart itself."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
from collections.abc import Callable
from pathlib import Path

from matplotlib.figure import Figure

from personalization_assets.lib.reporting.charts import figure_png


class ChartProcessError(RuntimeError):
    """A chart failed in the chart process, or the process died; the message names the chart."""


def write_png(folder: Path, file_name: str, png: bytes) -> None:
    """Write ``png`` as ``folder/file_name`` atomically: a PDF renderer waiting for the file never reads half."""
    staging = folder / f".{file_name}.tmp"
    staging.write_bytes(png)
    os.replace(staging, folder / file_name)


def _serve(connection) -> None:
    """The forked process: draw each chart it is sent until it is sent None (or its parent goes away)."""
    while True:
        try:
            job = connection.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        name, make, folder, file_name = job
        try:
            png = figure_png(make())
            if folder is not None:
                write_png(Path(folder), file_name, png)
        except Exception as error:  # the reason, for the parent to raise
            connection.send(("error", name, f"{type(error).__name__}: {error}"))
        else:
            connection.send(("ok", name, png))


class ChartProcess:
    """A forked process drawing the charts it is given (``submit``) while the caller draws others."""

    def __init__(self) -> None:
        self._connection = None
        self._process = None
        self._pending: list[str] = []
        if "fork" not in multiprocessing.get_all_start_methods():
            return
        context = multiprocessing.get_context("fork")
        parent, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(child,), name="report-charts", daemon=True)
        self._process.start()
        child.close()
        self._connection = parent

    @property
    def pending(self) -> tuple[str, ...]:
        """The charts submitted and not collected yet (``results``)."""
        return tuple(self._pending)

    @property
    def available(self) -> bool:
        return self._process is not None and self._process.is_alive()

    def submit(
        self, name: str, make: Callable[[], Figure], folder: Path | None = None, file_name: str | None = None
    ) -> None:
        """Draw ``make()`` there (``make`` must pickle: a module-level function or a partial of one); with
        ``folder``, the PNG is also written there as ``file_name`` (default ``name.png``)."""
        if self._connection is None:
            raise ChartProcessError("no chart process (fork is not available here)")
        self._connection.send((name, make, None if folder is None else str(folder), file_name or f"{name}.png"))
        self._pending.append(name)

    def results(self, timeout: float = 600) -> dict[str, bytes]:
        """The PNG of every chart submitted since the last call, by name; raises ChartProcessError if one failed
        or the process is gone."""
        pngs: dict[str, bytes] = {}
        failures = []
        pending, self._pending = self._pending, []
        assert self._connection is not None or not pending
        for _ in pending:
            if not self._connection.poll(timeout):
                self.close()
                raise ChartProcessError(f"the chart process did not draw {', '.join(pending)} within {timeout:.0f} s")
            try:
                status, name, payload = self._connection.recv()
            except (EOFError, OSError) as error:
                self.close()
                raise ChartProcessError(
                    f"the chart process stopped before it drew {', '.join(n for n in pending if n not in pngs)}"
                ) from error
            if status == "ok":
                pngs[name] = payload
            else:
                failures.append(f"{name}: {payload}")
        if failures:
            raise ChartProcessError(f"chart failed in the chart process ({'; '.join(failures)})")
        return pngs

    def close(self) -> None:
        """Stop the process (it finishes the chart it is drawing only if that takes under a second)."""
        if self._connection is not None:
            with contextlib.suppress(OSError):  # already gone
                self._connection.send(None)
            self._connection.close()
            self._connection = None
        if self._process is not None:
            self._process.join(1.0)
            if self._process.is_alive():
                self._process.kill()
                self._process.join()
            self._process = None

    def __enter__(self) -> ChartProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
