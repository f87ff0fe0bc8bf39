"""What the web tests share: serving the real app on a free port, and a Chromium page
that records any request leaving the machine."""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

import pytest

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def chromium_path() -> str:
    path = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        pytest.skip("Chromium introuvable (/usr/bin/chromium) : `make browser-deps` l'installe.")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def served(assistant) -> Iterator[str]:
    """The real app for `assistant`, launched in this process; yields its URL."""
    from qa.web.app import create_app

    demo = create_app(assistant)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()


def new_page(browser, height: int = 1000):
    """A fresh French session and the list its requests to other hosts go into."""
    context = browser.new_context(viewport={"width": 1400, "height": height}, locale="fr-FR")
    page = context.new_page()
    # A shared 2-core machine can be slow: generous waits, never a timing assertion.
    page.set_default_timeout(90_000)
    outside: list[str] = []
    page.on("request", lambda request: outside.append(request.url)
            if urlparse(request.url).hostname not in ("127.0.0.1", "localhost")
            and not request.url.startswith(("data:", "blob:")) else None)
    return page, outside
