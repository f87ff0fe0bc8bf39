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


@contextmanager
def serving(app, host: str = "127.0.0.1") -> Iterator[str]:
    """An ASGI `app` (`qa.web.server.create_server`) under a real uvicorn on a free
    port, in a thread of this process; yields its URL (always through 127.0.0.1)."""
    import threading
    import time

    import uvicorn

    port = free_port()
    # A client's open event stream (gradio_client's heartbeat) must not hold the stop.
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning",
                                           access_log=False, timeout_graceful_shutdown=1))
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def copied_assistant(assistant, base: Path, **overrides):
    """A private assistant over copies of `assistant`'s corpus and index (nothing is
    embedded again), for tests that add or remove articles; `overrides` go to its
    settings."""
    from dataclasses import replace

    from qa import Assistant

    settings = replace(assistant.settings, corpus_dir=base / "corpus", index_dir=base / "index",
                       **overrides)
    shutil.copytree(assistant.settings.corpus_dir, settings.corpus_dir)
    shutil.copytree(assistant.settings.index_dir, settings.index_dir, symlinks=True)
    return Assistant.load(settings, embedder=assistant.embedder, answerer=assistant.answerer)
