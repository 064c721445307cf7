"""The report's PDF, rendered by WeasyPrint in a child process (``PdfWorker``), so the report step overlaps it with
its own work: the child imports WeasyPrint while the report's tables are computed, then parses and styles the
HTML while the charts are still being drawn, waiting for each chart's file only when layout needs it.

The child runs this file as a script (``python pdf_worker.py``: no package import, so it starts in a fraction of
the report process's import time). Protocol: one JSON request on stdin ``{"html", "base_url", "output",
"wait_for", "timeout"}``; the PDF is written to ``output``; stdout gets ``{"pages": n}``; a failure exits 1 with
the reason on stderr."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

POLL_SECONDS = 0.01


class PdfRenderError(RuntimeError):
    """The PDF worker failed or timed out; the message carries its reason."""


class PdfWorker:
    """A WeasyPrint child process, started before the HTML exists::

        worker = PdfWorker()                      # imports WeasyPrint meanwhile
        worker.render(html, folder, folder / "report.pdf", wait_for=["lift.png"], timeout=120)
        ...                                       # draw lift.png into folder
        pages = worker.pages()                    # the PDF's page count, once written

    ``close()`` (or the context manager) stops the child if the report gives up before it finished."""

    def __init__(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-X", "utf8", str(Path(__file__).resolve())],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )
        self._outcome: tuple[str, str] | None = None
        self._exchange: threading.Thread | None = None
        self._timeout = 0.0

    def render(
        self, html: str, base_url: Path, output: Path, wait_for: Sequence[str] = (), timeout: float = 600
    ) -> None:
        """Send the HTML (relative links resolve against ``base_url``); returns at once. ``wait_for``: files under
        ``base_url`` that may not exist yet (the charts); the child waits up to ``timeout`` s for each."""
        request = json.dumps(
            {
                "html": html,
                "base_url": str(Path(base_url).resolve()),
                "output": str(Path(output).resolve()),
                "wait_for": list(wait_for),
                "timeout": timeout,
            }
        )
        self._timeout = timeout

        def exchange() -> None:  # writes the request while reading the answer: no pipe can fill up
            self._outcome = self._process.communicate(request)

        self._exchange = threading.Thread(target=exchange, name="pdf-worker", daemon=True)
        self._exchange.start()

    def pages(self) -> int:
        """Wait for the PDF; its page count. Raises PdfRenderError with the child's reason if it failed."""
        if self._exchange is None:
            raise RuntimeError("PdfWorker.pages() before render()")
        self._exchange.join(self._timeout + 60)
        if self._exchange.is_alive():
            self.close()
            raise PdfRenderError(f"the PDF was not written within {self._timeout + 60:.0f} s")
        stdout, stderr = self._outcome or ("", "")
        if self._process.returncode != 0:
            raise PdfRenderError(stderr.strip()[-3000:] or f"the PDF worker exited with {self._process.returncode}")
        return int(json.loads(stdout.strip().splitlines()[-1])["pages"])

    def close(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
            self._process.wait()

    def __enter__(self) -> PdfWorker:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _waiting_fetcher(base_url: Path, wait_for: Sequence[str], timeout: float):
    """WeasyPrint's URL fetcher, except that a file in ``wait_for`` is awaited (it is being drawn) and a file that
    never comes stops the rendering instead of leaving a hole in the PDF."""
    from weasyprint.urls import URLFetcher

    awaited = {(base_url / name).resolve() for name in wait_for}

    class WaitingFetcher(URLFetcher):
        def fetch(self, url, headers=None):
            if url.startswith("file://"):
                from urllib.parse import unquote, urlsplit

                path = Path(unquote(urlsplit(url).path)).resolve()
                if path in awaited:
                    deadline = time.monotonic() + timeout
                    while not path.exists():
                        if time.monotonic() > deadline:
                            raise FileNotFoundError(f"{path.name} was not drawn within {timeout:.0f} s")
                        time.sleep(POLL_SECONDS)
            return super().fetch(url, headers)

    return WaitingFetcher(fail_on_errors=True)


def main() -> int:
    from weasyprint import HTML  # first: loading WeasyPrint and its pango/cairo bindings is the slow part

    request = json.loads(sys.stdin.read())
    base_url = Path(request["base_url"])
    fetcher = _waiting_fetcher(base_url, request["wait_for"], float(request["timeout"]))
    try:
        document = HTML(string=request["html"], base_url=f"{base_url.as_uri()}/", url_fetcher=fetcher).render()
        document.write_pdf(request["output"])
    except Exception as error:  # the reason for the parent, in one line, not a traceback
        cause = error.__cause__ or error
        print(f"{type(error).__name__}: {error} ({type(cause).__name__}: {cause})", file=sys.stderr)
        return 1
    print(json.dumps({"pages": len(document.pages)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
