"""Build the documentation site and take screenshots of its pages in headless Chromium,
to look at how they render (a development check, outside CI).

    python tools/docs_screenshots.py [--out DIR] [--width PX] [--height PX] [PAGE ...]

PAGE is a path of the site ("" for the home page, "api/operators/"); the default is
the home page and the API reference's operators page. Needs the docs extra
(``pip install ".[docs]"``), an in-place build of fasttape, and a Chromium binary
(``chromium``, ``chromium-browser``, ``google-chrome``; Debian: ``apt-get install
chromium``). Writes one PNG per page to DIR (default: a temporary folder, printed).
"""
import argparse
import functools
import http.server
import pathlib
import shutil
import subprocess
import sys
import tempfile
import threading

ROOT = pathlib.Path(__file__).resolve().parent.parent
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
DEFAULT_PAGES = ("", "api/operators/")


def find_browser():
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    raise SystemExit(f"no Chromium found on the PATH (looked for {', '.join(BROWSERS)})")


def build_site(site):
    subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet",
                    "--config-file", str(ROOT / "mkdocs.yml"), "--site-dir", str(site)],
                   check=True, cwd=ROOT)


def serve(site):
    """An HTTP server of the built site on a free local port, in a daemon thread
    (the site's links are directories: file:// URLs would not resolve them)."""
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def screenshot(browser, url, path, width, height):
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu",
                    "--hide-scrollbars", f"--window-size={width},{height}",
                    f"--screenshot={path}", url],
                   check=True, capture_output=True, timeout=120)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pages", nargs="*", default=list(DEFAULT_PAGES))
    parser.add_argument("--out", type=pathlib.Path, default=None)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=1400)
    args = parser.parse_args(argv)
    browser = find_browser()
    out = args.out or pathlib.Path(tempfile.mkdtemp(prefix="fasttape-docs-shots-"))
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        site = pathlib.Path(tmp) / "site"
        build_site(site)
        server = serve(site)
        try:
            port = server.server_address[1]
            for page in args.pages:
                name = page.strip("/").replace("/", "-") or "home"
                path = out / f"{name}.png"
                screenshot(browser, f"http://127.0.0.1:{port}/{page}", path,
                           args.width, args.height)
                print(path)
        finally:
            server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
