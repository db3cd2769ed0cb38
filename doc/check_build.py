"""Check a built HTML documentation: every public object has its API page,
every example its gallery page with a figure, the performance page the
latest benchmark results.

Run after the build, from the repository root::

    python -m sphinx -W --keep-going -b html doc doc/_build/html
    python doc/check_build.py doc/_build/html

Exits 1 and names every problem found; prints ``docs: N passed, M failed``.
"""

import argparse
import html
import re
import struct
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE / "sphinxext"))

from api_page import public_names  # noqa: E402
from benchmark_results import inline  # noqa: E402

_TAG = re.compile(r"<[^>]+>")


def _text(page):
    """The visible text of an HTML page, whitespace collapsed."""
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S)
    return " ".join(html.unescape(_TAG.sub(" ", body)).split())


def _png_size(path):
    """(width, height) of a PNG file, or None if it is not a PNG."""
    data = path.read_bytes()[:24]
    if len(data) < 24 or data[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    return struct.unpack(">II", data[16:24])


class Checker:
    def __init__(self, build):
        self.build = build
        self.passed = 0
        self.failures = []

    def check(self, ok, message):
        if ok:
            self.passed += 1
        else:
            self.failures.append(message)
        return ok

    def page(self, relative):
        path = self.build / relative
        if not self.check(path.is_file(), f"missing page {relative}"):
            return None
        return path.read_text(encoding="utf-8")

    def api(self):
        """One page per public name, which documents that object, linked
        from the API reference."""
        reference = self.page("api.html") or ""
        for module, names in public_names().items():
            self.check(bool(names), f"{module}.__all__ is empty")
            for name in names:
                full = f"{module}.{name}"
                relative = f"generated/{full}.html"
                page = self.page(relative)
                if page is None:
                    continue
                self.check(
                    f'id="{full}"' in page,
                    f"{relative} does not document {full} (no anchor id={full!r})",
                )
                self.check(
                    f'href="{relative}' in reference,
                    f"api.html does not link to {relative}",
                )

    def gallery(self):
        """One page per example, with at least one figure that exists and is
        a real image; no example ended in an error."""
        examples = sorted((ROOT / "examples").glob("plot_*.py"))
        self.check(bool(examples), "no examples/plot_*.py found")
        index = self.page("auto_examples/index.html") or ""
        for script in examples:
            relative = f"auto_examples/{script.stem}.html"
            page = self.page(relative)
            if page is None:
                continue
            self.check(
                f'href="{script.stem}.html' in index,
                f"the gallery index does not link to {relative}",
            )
            images = re.findall(
                rf'<img[^>]+src="([^"]*sphx_glr_{re.escape(script.stem)}_\d+\.png)"',
                page,
            )
            if not self.check(bool(images), f"{relative} shows no figure"):
                continue
            for src in images:
                image = (self.build / "auto_examples" / src).resolve()
                size = _png_size(image) if image.is_file() else None
                self.check(
                    size is not None and min(size) >= 100,
                    f"{relative}: figure {src} is missing or not an image",
                )
            self.check(
                "Traceback (most recent call last)" not in page,
                f"{relative} shows a traceback",
            )

    def performance(self):
        """The performance page holds every cell of every table of
        benchmarks/RESULTS.md, and its date."""
        page = self.page("user_guide/performance.html")
        if page is None:
            return
        text = _text(page)
        results = (ROOT / "benchmarks" / "RESULTS.md").read_text(encoding="utf-8")
        cells = []
        for line in results.splitlines():
            line = line.strip()
            if line.startswith("|") and not re.fullmatch(r"[|\s:-]+", line):
                cells.extend(c.strip() for c in line.strip("|").split("|"))
        self.check(bool(cells), "benchmarks/RESULTS.md has no table")
        missing = []
        for cell in filter(None, cells):
            # as rendered: code spans lose their backquotes
            shown = " ".join(re.sub(r"`([^`]*)`", r"\1", cell).split())
            if shown not in text:
                missing.append(cell)
        self.check(
            not missing,
            f"user_guide/performance.html lacks {len(missing)} cells of "
            f"benchmarks/RESULTS.md, e.g. {missing[:3]}",
        )
        date = re.search(r"^- Date: (\S+)", results, flags=re.M)
        if date:
            self.check(
                date.group(1) in text,
                f"user_guide/performance.html does not show the run of {date[1]}",
            )
        self.check(inline("`a`") == "``a``", "the Markdown converter is broken")

    def math(self):
        """Pages with formulas load MathJax and mark the formulas for it."""
        for relative in ["index.html", "user_guide/model.html"]:
            page = self.page(relative)
            if page is None:
                continue
            self.check(
                "mathjax" in page.lower() and 'class="math' in page,
                f"{relative} has no MathJax formula",
            )

    def run(self):
        self.page("index.html")
        self.api()
        self.gallery()
        self.performance()
        self.math()
        for failure in self.failures:
            print(f"FAILED: {failure}")
        print(f"docs: {self.passed} passed, {len(self.failures)} failed")
        return 1 if self.failures else 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "build",
        nargs="?",
        default=str(HERE / "_build" / "html"),
        help="the HTML output directory (default: doc/_build/html)",
    )
    args = parser.parse_args(argv)
    return Checker(Path(args.build)).run()


if __name__ == "__main__":
    sys.exit(main())
