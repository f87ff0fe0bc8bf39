"""« Ajouter des articles » on the web page: the handler over a real engine, the page's
wiring, readers answered during an upload, and the whole flow in Chromium.

Every test that adds articles works on a private copy of the corpus (`fresh_settings`),
so the session's shared assistant and the other tests never see the new articles.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

import qa.web.app as web
from qa import Assistant, QAError, Settings
from qa.index.manifest import Counts
from qa.schema import Article
from qa.web.chat import respond
from qa.web.render import inert
from qa.web.upload import NO_FILE_HINT, UPLOAD_ERROR_MESSAGE, add_articles

from .test_web_browser import ARTIFACTS, ask, last_reply
from .web_support import CHROMIUM_ARGS, chromium_path, free_port, new_page, served

CANNES_TITLE = "Palme d'or à Cannes"
CANNES = (f"{CANNES_TITLE}\n\nLe jury du festival de Cannes a attribué samedi la Palme d'or "
          "au film « Les Marées de Bretagne », tourné à Douarnenez par Anne Le Goff.\n")
QUESTION = "Quel film a reçu la Palme d'or ?"
FILM = "Les Marées de Bretagne"
ADDED = re.compile(r"1 article ajouté \((\d+) passages? encodés? en \d+,\d s\)")
HOSTILE_TITLE = '<img src=x onerror="window.__pwned=1"> {{x}} ${y}'


def _uploaded(tmp_path: Path, name: str, text: str) -> Path:
    """A file as Gradio hands it over: its own name, in a folder of the server's."""
    folder = tmp_path / "gradio" / f"{abs(hash((name, text))):x}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


class Recorder:
    """Stands in for `gr.Progress()`: keeps what the handler announces."""

    def __init__(self):
        self.calls: list[tuple[object, str | None]] = []

    def __call__(self, progress, desc=None, **_):
        self.calls.append((progress, desc))


@pytest.fixture
def live(fresh_settings, embedder) -> Assistant:
    """An assistant over a private copy of the corpus (3 articles), its index built."""
    return Assistant.load(fresh_settings, embedder=embedder)


def _stub(add) -> SimpleNamespace:
    """An engine whose `add` is `add`, over one article, for the failure paths."""
    article = Article(id="a", title="Un article", text="Un texte.")
    return SimpleNamespace(settings=Settings(), add=add, index=SimpleNamespace(
        articles={"a": article}, manifest=SimpleNamespace(counts=Counts(1, 1)), n_chunks=1))


# --------------------------------------------------------------------------- handler

def test_upload_adds_the_article_and_the_answer_cites_it(live, tmp_path):
    path = _uploaded(tmp_path, "cannes.txt", CANNES)
    progress = Recorder()
    done = add_articles([str(path)], live, progress)

    assert progress.calls[0] == (0, "Indexation de 1 fichier…")
    # Then the bar fills as the new article's passages and sentences are encoded.
    steps = progress.calls[1:]
    assert steps and steps[-1][0] == 1.0 and "Encodage" in steps[-1][1]
    assert [fraction for fraction, _ in steps] == sorted(fraction for fraction, _ in steps)
    assert done.done
    match = ADDED.search(done.status)
    assert match and int(match.group(1)) > 0, done.status
    assert inert(CANNES_TITLE) in done.status and "Corpus : 4 articles" in done.status
    assert str(path.parent) not in done.status  # the server's folders are not shown
    assert "4 articles, " in done.header and inert(CANNES_TITLE) in done.header
    assert "Articles indexés (4)" in done.corpus and inert(CANNES_TITLE) in done.corpus
    assert (Path(live.settings.corpus_dir) / "cannes.txt").read_text("utf-8") == CANNES

    reply = respond(QUESTION, [], [], [], live)
    assert reply.answer.answered and FILM in reply.answer.text
    assert reply.answer.citations[0].article_id == "cannes"
    assert inert(CANNES_TITLE) in reply.panel


def test_same_content_under_another_name_is_said_to_be_there(live, tmp_path):
    add_articles([_uploaded(tmp_path, "cannes.txt", CANNES)], live)
    again = _uploaded(tmp_path, "autre-nom.txt", CANNES)
    done = add_articles([str(again)], live, Recorder())

    assert "Aucun article ajouté." in done.status
    assert "1 fichier ignoré :" in done.status
    assert "autre-nom.txt : déjà dans le corpus (article cannes)" in done.status
    assert str(again.parent) not in done.status
    assert "Corpus : 4 articles" in done.status and len(live.index.articles) == 4
    assert not (Path(live.settings.corpus_dir) / "autre-nom.txt").exists()


def test_bad_files_are_listed_with_their_reason_beside_the_good_one(live, tmp_path):
    files = [_uploaded(tmp_path, "cannes.txt", CANNES),
             _uploaded(tmp_path, "vide.txt", "  \n"),
             _uploaded(tmp_path, "notes.docx", "pas un format lu"),
             _uploaded(tmp_path, "piege.txt", f"{HOSTILE_TITLE}\n\nUn texte sur la voile à Brest.")]
    progress = Recorder()
    done = add_articles(files, live, progress)

    assert progress.calls[0] == (0, "Indexation de 4 fichiers…")
    assert re.search(r"2 articles ajoutés \(\d+ passages encodés en \d+,\d s\)", done.status)
    assert "2 fichiers ignorés :" in done.status
    assert "vide.txt : fichier vide" in done.status
    assert "notes.docx : .docx non pris en charge" in done.status
    # what a file holds stays text in the page, as what a reader types does
    assert "<img" not in done.status + done.header + done.corpus
    assert "{{" not in done.status + done.corpus and "${" not in done.status + done.corpus
    assert inert(HOSTILE_TITLE) in done.status and inert(HOSTILE_TITLE) in done.corpus


def test_a_new_text_under_a_taken_name_is_not_said_to_be_added(live, tmp_path):
    path = _uploaded(tmp_path, "grok-deepfakes-enquete.txt",
                     "Autre sujet\n\nUn texte tout à fait différent sur la pêche à Concarneau.")
    done = add_articles([path], live)
    assert "Aucun article ajouté." in done.status and "1 fichier ignoré :" in done.status
    assert "grok-deepfakes-enquete.txt : " in done.status
    assert "Corpus : 3 articles" in done.status


def test_no_file_gets_a_hint_without_calling_the_engine():
    def add(paths, progress=False, on_progress=None):
        raise AssertionError("the engine must not be called")

    for files in (None, [], [None]):
        done = add_articles(files, _stub(add), Recorder())
        assert inert(NO_FILE_HINT) in done.status and not done.done


def test_engine_failure_is_a_short_french_message_and_is_logged(caplog, tmp_path):
    def add(paths, progress=False, on_progress=None):
        raise RuntimeError("boom: secret internals")

    path = _uploaded(tmp_path, "cannes.txt", CANNES)
    with caplog.at_level(logging.ERROR, logger="qa.web.upload"):
        done = add_articles([path], _stub(add), Recorder())
    assert inert(UPLOAD_ERROR_MESSAGE) in done.status and not done.done
    assert "boom" not in done.status and "Traceback" not in done.status
    assert any(r.exc_info for r in caplog.records)
    assert "1 article, 1 passage" in done.header  # the page still shows the corpus


def test_package_errors_are_shown_as_written_without_server_paths(tmp_path):
    path = _uploaded(tmp_path, "cannes.txt", CANNES)

    def add(paths, progress=False, on_progress=None):
        raise QAError(f"{paths[0]} est introuvable : indiquez un fichier ou un dossier.")

    done = add_articles([path], _stub(add))
    assert "cannes.txt est introuvable" in done.status and str(tmp_path) not in done.status


# --------------------------------------------------------------------------- page wiring

def test_the_page_has_an_upload_section_in_its_own_queue(assistant):
    demo = web.create_app(assistant)
    config = demo.get_config_file()
    props = {c["props"].get("elem_id"): (c["type"], c["props"]) for c in config["components"]}
    kind, accordion = props["qa-upload"]
    assert kind == "accordion" and accordion["label"] == "Ajouter des articles"
    kind, files = props["qa-upload-files"]
    assert kind == "file" and files["file_count"] == "multiple"
    assert set(files["file_types"]) == {".md", ".txt", ".jsonl", ".html", ".htm", ".pdf"}
    assert props["qa-upload-index"][1]["value"] == "Indexer"
    queues = {fn.api_name: fn.concurrency_id for fn in demo.fns.values()}
    assert queues["add_articles"] == "corpus" and queues["ask"] == "engine"


class SlowPassages:
    """The real embedder, taking `delay` seconds more over each batch of passages."""

    def __init__(self, embedder, delay: float):
        self._embedder, self.delay = embedder, delay
        self.indexing = threading.Event()

    def __getattr__(self, name):
        return getattr(self._embedder, name)

    def encode(self, texts, kind, progress=False):
        if kind != "query":
            self.indexing.set()
            time.sleep(self.delay)
        return self._embedder.encode(texts, kind, progress)


def test_readers_are_answered_while_an_upload_is_indexed(live, tmp_path):
    from gradio_client import Client, handle_file

    slow = SlowPassages(live.embedder, delay=4.0)
    live.embedder = slow
    demo = web.create_app(live)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        url = f"http://127.0.0.1:{port}/"
        uploader, reader = Client(url, verbose=False), Client(url, verbose=False)
        job = uploader.submit([handle_file(_uploaded(tmp_path, "cannes.txt", CANNES))],
                              api_name="/add_articles")
        assert slow.indexing.wait(timeout=60)
        started = time.perf_counter()
        _, chat, _ = reader.predict("Quelle est la peine prévue ?", [], api_name="/ask")
        waited = time.perf_counter() - started
        assert not job.done(), "the upload ended before the question: nothing was shown"
        assert "60" in json.dumps(chat[-1], ensure_ascii=False) and waited < slow.delay
        status = job.result(timeout=120)[0]
        assert ADDED.search(status), status
    finally:
        demo.close()


# --------------------------------------------------------------------------- browser

@pytest.fixture
def upload_url(live):
    with served(live) as url:
        yield url


# Records, from before the click, whether the indexing message ever showed up.
_WATCH_PROGRESS = """() => {
  window.__qaSawProgress = false;
  new MutationObserver(() => {
    if (document.body.innerText.includes('Indexation de 1 fichier')) window.__qaSawProgress = true;
  }).observe(document.body, {childList: true, subtree: true, characterData: true});
}"""


@pytest.mark.browser
def test_upload_in_the_browser_then_ask_about_it(upload_url, tmp_path):
    executable = chromium_path()
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright n'est pas installé")
    path = _uploaded(tmp_path, "cannes.txt", CANNES)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        page, outside = new_page(browser, height=1200)
        page.goto(upload_url)
        page.wait_for_selector("#qa-input textarea")
        assert "3 articles" in page.locator("#qa-header .qa-summary").inner_text()

        page.get_by_text("Ajouter des articles").click()
        page.locator("#qa-upload-files input[type=file]").set_input_files(str(path))
        page.locator("#qa-upload-files", has_text="cannes.txt").wait_for(timeout=120_000)
        page.evaluate(_WATCH_PROGRESS)
        page.locator("#qa-upload-index").click()
        done = page.locator("#qa-upload-status .qa-upload-done")
        done.wait_for(timeout=120_000)
        assert ADDED.search(done.inner_text())
        assert page.evaluate("window.__qaSawProgress")
        assert page.locator("#qa-header .qa-summary").inner_text().startswith("4 articles")
        assert CANNES_TITLE in page.locator("#qa-header .qa-titles").inner_text()
        page.wait_for_function("document.title.includes('4 articles')")
        assert "Articles indexés (4)" in page.locator("#qa-corpus-list").inner_text()

        ask(page, QUESTION)
        assert FILM in last_reply(page).inner_text()
        assert CANNES_TITLE in page.locator("#qa-sources .qa-card h3").all_inner_texts()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "upload.png"), full_page=True)
        page.context.close()
        browser.close()
    assert outside == [], f"requests outside the machine: {outside}"
