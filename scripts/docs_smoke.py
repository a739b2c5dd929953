"""Open the built documentation in headless Chromium and check what a reader sees.

Usage (after the Sphinx build; Debian's ``chromium`` package)::

    python scripts/docs_smoke.py docs/_build/html [--screenshots DIR]

For the index page and the API page of ``integrated_gradients`` it loads the page from disk in
headless Chromium, lets the scripts run, and reads the resulting DOM. Each page must show the
method names and at least one formula typeset by MathJax (``<mjx-container>`` elements, the
renderer's output, not the raw TeX), with no MathJax error. ``--screenshots DIR`` also writes a
PNG of each page, to look at. Exits 1 if a check fails.
"""

from __future__ import annotations

import argparse
import html
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PAGES = {
    "index.html": [
        "integrated_gradients",
        "saliency",
        "input_x_gradient",
        "smoothgrad",
        "feature_ablation",
        "shapley_values",
        "shapley_value_sampling",
        "kernel_shap",
        "lime",
        "random_attribution",
    ],
    "generated/pennylane_xqml.integrated_gradients.html": [
        "integrated_gradients",
        "baselines",
        "n_steps",
        "return_convergence_delta",
    ],
}
BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def find_browser(name=None) -> str:
    for candidate in (name,) if name else BROWSERS:
        path = shutil.which(candidate)
        if path:
            return path
    raise SystemExit(f"docs_smoke: no browser found (tried {name or ', '.join(BROWSERS)})")


def chromium(browser, *args, timeout=120):
    """Run headless Chromium with a throw-away profile; returns its stdout."""
    with tempfile.TemporaryDirectory() as profile:
        command = [
            browser,
            "--headless",
            "--no-sandbox",  # CI runs as root
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--allow-file-access-from-files",
            f"--user-data-dir={profile}",
            "--virtual-time-budget=20000",  # let MathJax load its fonts and typeset
            *args,
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"chromium exited {done.returncode}: {done.stderr[-2000:]}")
    return done.stdout


def check_page(browser, path: Path, names, screenshots=None) -> list[str]:
    """The failed checks of one page (empty when it passes)."""
    url = path.resolve().as_uri()
    dom = chromium(browser, "--dump-dom", url)
    text = html.unescape(re.sub(r"<[^>]+>", " ", dom))
    problems = [f"method name {name!r} not on the page" for name in names if name not in text]
    n_math = len(re.findall(r'class="math[ "]', dom))
    n_typeset = dom.count("<mjx-container")
    if n_typeset == 0:
        problems.append(f"no formula typeset by MathJax ({n_math} math elements left as TeX)")
    if "<merror" in dom or "data-mjx-error" in dom:
        problems.append("MathJax reported an error in a formula")
    if screenshots is not None:
        screenshots.mkdir(parents=True, exist_ok=True)
        png = screenshots / (path.name.replace(".html", "") + ".png")
        chromium(browser, f"--screenshot={png.resolve()}", "--window-size=1280,1600", url)
        print(f"docs_smoke: screenshot {png}")
    print(
        f"docs_smoke: {path.name}: {len(names) - len([p for p in problems if 'name' in p])}"
        f"/{len(names)} names, {n_typeset} typeset formulas"
    )
    return problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("site", nargs="?", default="docs/_build/html", type=Path)
    parser.add_argument("--browser", default=None, help="browser executable (default: chromium)")
    parser.add_argument("--screenshots", type=Path, default=None, help="write PNGs here")
    args = parser.parse_args(argv)
    browser = find_browser(args.browser)
    failures = []
    for page, names in PAGES.items():
        path = args.site / page
        if not path.exists():
            failures.append(f"{page}: missing from the build")
            continue
        failures += [
            f"{page}: {problem}" for problem in check_page(browser, path, names, args.screenshots)
        ]
    for failure in failures:
        print("docs_smoke:", failure)
    print(
        f"docs_smoke: {'failed' if failures else 'passed'}: {len(PAGES)} pages, {len(failures)} errors"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
