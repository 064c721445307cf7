"""The report's PDF, rendered by WeasyPrint in a child process (``PdfWorker``), so the report step overlaps it with
its own work: the child imports WeasyPrint while the report's tables are computed, then lays the pages out while
the charts are still being drawn, and writes the PDF once they are.

Layout needs each chart's shape, not its pixels. A chart whose file is not drawn yet but whose size was announced
(``sizes``: the figure's size in pixels, known before it is drawn) is laid out with a blank stand-in of that size;
once the real file exists it takes the stand-in's place in the laid-out pages (drawn with ``object-fit: contain``
in its box, so a tight crop a few pixels off the announced size changes nothing around it). If the real chart's
shape is further off (``SHAPE_TOLERANCE``), or WeasyPrint's image objects are not what this module expects, the
pages are laid out again with the real files: slower, never wrong. A chart without an announced size is awaited
where layout meets it.

The child runs this file as a script (``python pdf_worker.py``: no package import, so it starts in a fraction of
the report process's import time). Protocol: one JSON request on stdin ``{"html", "base_url", "output",
"wait_for", "sizes", "timeout"}``; the PDF is written to ``output``; stdout gets ``{"pages": n, "relaid": bool}``;
a failure exits 1 with the reason on stderr."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

POLL_SECONDS = 0.01
SHAPE_TOLERANCE = 0.03  # relative difference of width/height ratios a stand-in may have from its real chart


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
        self,
        html: str,
        base_url: Path,
        output: Path,
        wait_for: Sequence[str] = (),
        timeout: float = 600,
        sizes: Mapping[str, tuple[int, int]] | None = None,
    ) -> None:
        """Send the HTML (relative links resolve against ``base_url``); returns at once. ``wait_for``: files under
        ``base_url`` that may not exist yet (the charts); the child waits up to ``timeout`` s for each.
        ``sizes``: (width, height) in pixels of awaited files, so the pages are laid out before they exist."""
        request = json.dumps(
            {
                "html": html,
                "base_url": str(Path(base_url).resolve()),
                "output": str(Path(output).resolve()),
                "wait_for": list(wait_for),
                "sizes": {name: list(size) for name, size in (sizes or {}).items()},
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
        return int(self._answer()["pages"])

    def relaid(self) -> bool:
        """Whether the pages had to be laid out again with the real charts (a stand-in's shape was off)."""
        return bool(self._answer().get("relaid", False))

    def _answer(self) -> dict:
        if self._exchange is None:
            raise RuntimeError("PdfWorker.pages() before render()")
        self._exchange.join(self._timeout + 60)
        if self._exchange.is_alive():
            self.close()
            raise PdfRenderError(f"the PDF was not written within {self._timeout + 60:.0f} s")
        stdout, stderr = self._outcome or ("", "")
        if self._process.returncode != 0:
            raise PdfRenderError(stderr.strip()[-3000:] or f"the PDF worker exited with {self._process.returncode}")
        return json.loads(stdout.strip().splitlines()[-1])

    def close(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
            self._process.wait()

    def __enter__(self) -> PdfWorker:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _await_file(path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise FileNotFoundError(f"{path.name} was not drawn within {timeout:.0f} s")
        time.sleep(POLL_SECONDS)


def _local_path(url: str) -> Path | None:
    if not url.startswith("file://"):
        return None
    from urllib.parse import unquote, urlsplit

    return Path(unquote(urlsplit(url).path)).resolve()


def _blank_png(width: int, height: int) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGBA", (width, height), (255, 255, 255, 0)).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def _waiting_fetcher(base_url: Path, wait_for: Sequence[str], timeout: float, sizes: Mapping[str, Sequence[int]]):
    """WeasyPrint's URL fetcher, except that a file in ``wait_for`` is awaited (it is being drawn) and a file that
    never comes stops the rendering instead of leaving a hole in the PDF. An awaited file with a size in ``sizes``
    that is not there yet is answered with a blank stand-in of that size; ``fetcher.stand_ins`` maps its URL to the
    real file."""
    from weasyprint.urls import URLFetcher, URLFetcherResponse

    awaited = {(base_url / name).resolve(): sizes.get(name) for name in wait_for}

    class WaitingFetcher(URLFetcher):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.stand_ins: dict[str, Path] = {}

        def fetch(self, url, headers=None):
            path = _local_path(url)
            if path in awaited and not path.exists():
                size = awaited[path]
                if size is not None and url not in self.stand_ins:
                    self.stand_ins[url] = path
                    return URLFetcherResponse(url, body=_blank_png(*size), headers={"Content-Type": "image/png"})
                _await_file(path, timeout)
            return super().fetch(url, headers)

    return WaitingFetcher(fail_on_errors=True)


def _put_real_charts(image_cache: dict, fetcher, timeout: float) -> bool:
    """Swap each stand-in in the laid-out pages for its real chart, once drawn; False when one does not fit (a
    different kind of image, or a shape off by more than SHAPE_TOLERANCE): then the pages must be laid out again.
    The laid-out boxes hold the stand-in objects themselves, so each is turned into its real image in place."""
    from weasyprint import DEFAULT_OPTIONS
    from weasyprint.images import get_image_from_uri

    fits = True
    for url, path in fetcher.stand_ins.items():
        _await_file(path, timeout)
        stand_in = image_cache.get(url)
        real = get_image_from_uri({}, fetcher, dict(DEFAULT_OPTIONS), url)
        if stand_in is None or real is None or type(real) is not type(stand_in):
            fits = False
            continue
        stand_in_ratio, real_ratio = getattr(stand_in, "ratio", None), getattr(real, "ratio", None)
        if not stand_in_ratio or not real_ratio or abs(real_ratio / stand_in_ratio - 1) > SHAPE_TOLERANCE:
            fits = False
            continue
        stand_in.__dict__.update(real.__dict__)
    return fits


def render_pdf(
    html: str,
    base_url: Path,
    output: Path,
    wait_for: Sequence[str] = (),
    sizes: Mapping[str, Sequence[int]] | None = None,
    timeout: float = 600,
) -> dict:
    """Write the PDF (what the child does with a request); its answer: ``pages``, ``relaid`` (laid out again with
    the real charts) and ``stand_ins`` (charts laid out before they were drawn)."""
    from weasyprint import HTML

    fetcher = _waiting_fetcher(base_url, wait_for, timeout, sizes or {})
    image_cache: dict = {}
    page = HTML(string=html, base_url=f"{base_url.as_uri()}/", url_fetcher=fetcher)
    document = page.render(cache=image_cache)
    relaid = bool(fetcher.stand_ins) and not _put_real_charts(image_cache, fetcher, timeout)
    if relaid:  # every chart exists now: no stand-ins this time
        document = page.render()
    document.write_pdf(output)
    return {"pages": len(document.pages), "relaid": relaid, "stand_ins": len(fetcher.stand_ins)}


def main() -> int:
    # first: loading WeasyPrint and its pango/cairo bindings is the slow part
    from weasyprint.urls import FatalURLFetchingError

    request = json.loads(sys.stdin.read())
    try:
        answer = render_pdf(
            request["html"],
            Path(request["base_url"]),
            Path(request["output"]),
            request["wait_for"],
            request.get("sizes", {}),
            float(request["timeout"]),
        )
    except (Exception, FatalURLFetchingError) as error:  # the reason for the parent, in one line, not a traceback
        # WeasyPrint raises a chart that never came as FatalURLFetchingError, a BaseException: ``except Exception``
        # let it through as a traceback whose head (the chart's name) the parent's tail cut could lose.
        cause = error.__cause__ or error
        print(f"{type(error).__name__}: {error} ({type(cause).__name__}: {cause})", file=sys.stderr)
        return 1
    print(json.dumps(answer))
    return 0


if __name__ == "__main__":
    sys.exit(main())
