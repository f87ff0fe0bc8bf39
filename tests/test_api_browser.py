"""The team server in a real Chromium: the editor's login then upload, with markup in the
file's name, title and text shown inert; the chat beside it; `/docs` and `/editor` load
nothing from outside. Works on a private copy of the corpus and index.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from qa.web.server import create_server

from .test_web_browser import ARTIFACTS, ask, last_reply
from .web_support import copied_assistant, new_page, serving

pytestmark = pytest.mark.browser

EDITOR = "editeur-" + "b" * 24
HOSTILE_NAME = '<img src=x onerror="window.__pwned=1">.md'
HOSTILE_TITLE = '<img src=x onerror="window.__pwned=1"> Régates {{x}} ${y}'
HOSTILE_TEXT = ("La régate de Douarnenez a réuni <script>window.__pwned=1</script> quarante "
                "vieux gréements samedi, selon les organisateurs.")


@pytest.fixture(scope="module")
def url(assistant, tmp_path_factory):
    live = copied_assistant(assistant, tmp_path_factory.mktemp("api-browser"))
    settings = replace(live.settings, editor_token=EDITOR, rate_limit=10_000)
    with serving(create_server(settings, live)) as base:
        yield base


def test_an_editor_logs_in_and_uploads_markup_that_stays_text(browser, url, tmp_path):
    page, outside = new_page(browser, height=1300)
    page.goto(url + "/")
    page.wait_for_selector("#qa-input textarea")
    page.get_by_text("Ajouter des articles").click()
    login = page.locator("#qa-editor-login")
    login.wait_for(state="visible")
    assert "réservé aux éditeurs" in login.inner_text()
    assert page.locator("#qa-upload-files").count() == 0 or not page.locator(
        "#qa-upload-files").is_visible()

    page.goto(url + "/editor")
    page.fill("#qa-editor-token", EDITOR + "x")
    page.click("button[type=submit]")
    assert "Jeton refusé" in page.locator(".qa-error").inner_text()
    page.fill("#qa-editor-token", EDITOR)
    page.click("button[type=submit] >> nth=0")
    page.wait_for_selector("#qa-input textarea")

    path = tmp_path / HOSTILE_NAME
    path.write_text(f"---\ntitle: '{HOSTILE_TITLE}'\n---\n\n{HOSTILE_TEXT}\n", encoding="utf-8")
    page.get_by_text("Ajouter des articles").click()
    page.locator("#qa-editor-session").wait_for(state="visible")
    page.locator("#qa-upload-files input[type=file]").set_input_files(str(path))
    page.locator("#qa-upload-files", has_text="pwned").wait_for(timeout=120_000)
    page.locator("#qa-upload-index").click()
    done = page.locator("#qa-upload-status .qa-upload-done")
    done.wait_for(timeout=180_000)
    assert "1 article ajouté" in done.inner_text()
    assert HOSTILE_TITLE in page.locator("#qa-upload-status").inner_text()  # as the text it is

    ask(page, "Combien de vieux gréements à la régate de Douarnenez ?")
    reply = last_reply(page)
    assert "<script>window.__pwned=1</script>" in reply.inner_text()
    page.wait_for_timeout(300)  # an onerror would have fired by now
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.locator("img[src='x']").count() == 0
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "editor-upload.png"), full_page=True)
    page.context.close()
    assert outside == [], f"requests outside the machine: {outside}"


def test_docs_and_login_pages_load_nothing_from_outside(browser, url):
    page, outside = new_page(browser)
    page.goto(url + "/docs")
    assert "/api/v1/answer" in page.locator("body").inner_text()
    assert "/api/v1/articles/{article_id}" in page.locator("body").inner_text()
    page.goto(url + "/editor")
    assert page.locator("#qa-editor-token").is_visible()
    page.context.close()
    assert outside == [], f"requests outside the machine: {outside}"
