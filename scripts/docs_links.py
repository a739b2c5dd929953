"""Check the built documentation site's internal links and that it loads nothing from outside.

Usage (after the Sphinx build)::

    python scripts/docs_links.py docs/_build/html

Every ``href``/``src`` of every built HTML page that is not an external URL must point to a file
of the build, and a ``#fragment`` must be an ``id`` (or ``name``) on the target page. Links to
external pages (``<a href="https://...">``) are allowed and not fetched, but nothing the browser
loads by itself (``<script src>``, ``<link href>``, ``<img src>``, ``<iframe src>``) may come
from the network: the site must work offline. Exits 1 and lists the failures otherwise.
"""

from __future__ import annotations

import argparse
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

EXTERNAL_SCHEMES = ("http", "https", "mailto", "ftp", "data", "javascript")
LOADED = {("script", "src"), ("link", "href"), ("img", "src"), ("iframe", "src")}


class _Page(HTMLParser):
    """The links and the anchors of one HTML page."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.links = []  # (tag, attribute, value)
        self.anchors = set()

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if value is None:
                continue
            if name in ("id", "name"):
                self.anchors.add(value)
            elif name in ("href", "src"):
                self.links.append((tag, name, value))


def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8", errors="replace"))
    return page


def check_site(root: Path) -> tuple[list[str], int, int]:
    """The failures, the number of pages and the number of internal links checked."""
    pages = {path.resolve(): _parse(path) for path in sorted(root.rglob("*.html"))}
    failures, n_internal = [], 0
    for path, page in pages.items():
        where = path.relative_to(root.resolve())
        for tag, attribute, value in page.links:
            parts = urlsplit(value)
            if parts.scheme or value.startswith("//"):
                if (tag, attribute) in LOADED and parts.scheme in ("http", "https", ""):
                    failures.append(
                        f"{where}: <{tag} {attribute}={value!r}> loads from the network"
                    )
                elif parts.scheme not in EXTERNAL_SCHEMES:
                    failures.append(f"{where}: unknown link scheme {value!r}")
                continue
            n_internal += 1
            target = path if not parts.path else (path.parent / unquote(parts.path)).resolve()
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                failures.append(f"{where}: {value!r} -> missing file {target}")
                continue
            fragment = unquote(parts.fragment)
            if fragment and target.suffix == ".html":
                anchors = pages[target].anchors if target in pages else _parse(target).anchors
                if fragment not in anchors:
                    failures.append(f"{where}: {value!r} -> no id {fragment!r} in {target.name}")
    return failures, len(pages), n_internal


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("site", nargs="?", default="docs/_build/html", type=Path)
    args = parser.parse_args(argv)
    if not (args.site / "index.html").exists():
        print(f"docs_links: no index.html in {args.site}; build the site first")
        return 1
    failures, n_pages, n_links = check_site(args.site)
    for failure in failures:
        print("docs_links:", failure)
    status = "failed" if failures else "passed"
    print(
        f"docs_links: {status}: {n_pages} pages, {n_links} internal links, {len(failures)} errors"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
