"""The web chat in a real Chromium: answers, sources, `[n]` clicks, refusals, hostile input.

Screenshots and the submit-to-answer latency go to tests/artifacts/ (git-ignored).
Skipped, with the reason, where Chromium or Playwright is missing (`make browser-deps`).
"""

from __future__ import annotations

import json
import re
import statistics
import time
from pathlib import Path

import pytest

from .web_support import new_page, served

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
GROK_TITLE = "La justice enquête sur les deepfakes sexuels générés par Grok sur X"
PENALTY = re.compile(r"deux ans d.emprisonnement et 60[\s\u00a0\u202f]?000 euros d.amende")
INJECTION = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=1</script>'
ANSWER_TIMEOUT_MS = 30_000
REPLIES = ".qa-answer, .qa-notice"


@pytest.fixture(scope="module")
def app_url(assistant):
    with served(assistant) as url:
        yield url


@pytest.fixture
def page(browser, app_url):
    """A fresh session on the app; fails the test if the page asks anything of another host."""
    page, outside = new_page(browser)
    page.goto(app_url)
    page.wait_for_selector("#qa-input textarea")
    yield page
    page.context.close()
    assert outside == [], f"requests outside the machine: {outside}"


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def ask(page, question: str) -> float:
    """Types `question`, presses Enter, waits for the new reply; returns the seconds it took."""
    before = page.locator(REPLIES).count()
    page.fill("#qa-input textarea", question)
    started = time.perf_counter()
    page.press("#qa-input textarea", "Enter")
    page.wait_for_function(f"document.querySelectorAll({json.dumps(REPLIES)}).length > {before}",
                           timeout=ANSWER_TIMEOUT_MS)
    page.locator(REPLIES).nth(before).wait_for(state="visible")
    return time.perf_counter() - started


def last_reply(page):
    return page.locator(REPLIES).last


def test_answer_shows_sources_and_the_cited_sentence_on_click(page):
    _shot(page, "01-accueil")
    ask(page, "Quelle est la peine prévue ?")
    answer = last_reply(page)
    assert PENALTY.search(answer.inner_text())
    card_titles = page.locator("#qa-sources .qa-card h3").all_inner_texts()
    assert GROK_TITLE in card_titles
    _shot(page, "02-reponse")

    page.locator("#qa-chat a.qa-cite-ref", has_text="[1]").last.click()
    cited = page.locator("#cite-1-1")
    cited.wait_for(state="visible")
    assert PENALTY.search(cited.inner_text())
    page.wait_for_function("""() => {
        const r = document.getElementById('cite-1-1').getBoundingClientRect();
        return r.top >= 0 && r.bottom <= window.innerHeight;
    }""")
    _shot(page, "03-clic-sur-1")

    full = page.locator("#qa-sources details.qa-full").first
    full.locator("summary").click()
    assert PENALTY.search(full.locator("mark").first.inner_text())
    assert "Sollicité par POLITICO" in full.inner_text()
    _shot(page, "04-article-complet")


def test_earlier_answers_keep_working_links(page):
    ask(page, "Pourquoi le gouvernement veut-il suspendre Shein ?")
    ask(page, "Et qui l'a annoncé ?")
    reply = last_reply(page)
    assert "a annoncé le ministère" in reply.inner_text()
    assert "Comprise comme la suite de" in page.locator("#qa-sources").inner_text()
    _shot(page, "05-question-de-suite")
    # the first answer's sources are folded away: its [1] opens them again
    page.locator("#qa-chat a.qa-cite-ref[href='#cite-1-1']").click()
    page.locator("#cite-1-1").wait_for(state="visible")
    assert "Shein" in page.locator("#cite-1-1").inner_text()


def test_unanswerable_question_shows_closest_passages(page):
    ask(page, "Quelle est la capitale de l'Australie ?")
    reply = last_reply(page)
    assert "Je ne trouve pas la réponse dans les articles indexés." in reply.inner_text()
    assert "Passages les plus proches" in reply.inner_text()
    assert reply.locator("a.qa-cite-ref").count() == 0
    assert "Passages les plus proches" in page.locator("#qa-sources").inner_text()
    _shot(page, "06-sans-reponse")


def test_html_typed_by_a_reader_is_shown_not_run(page):
    ask(page, INJECTION)
    assert page.evaluate("typeof window.__pwned") == "undefined"
    user_bubbles = page.locator("#qa-chat .qa-question")
    assert INJECTION in user_bubbles.last.inner_text()
    assert page.locator("#qa-chat img[src='x'], #qa-sources img[src='x']").count() == 0
    page.wait_for_timeout(300)  # an onerror would have fired by now
    assert page.evaluate("typeof window.__pwned") == "undefined"
    _shot(page, "07-injection")


def test_empty_long_and_emoji_messages_do_not_break_the_page(page):
    ask(page, "")
    assert "Écrivez une question" in last_reply(page).inner_text()
    page.fill("#qa-input textarea", "")
    ask(page, "Quelle est la peine prévue ? " + "x" * 100_000)
    assert "tronquée" in last_reply(page).inner_text()
    ask(page, "🤔 Quelle est la peine prévue ? 🙏🏽")
    assert PENALTY.search(page.locator(".qa-answer").last.inner_text())
    assert page.locator("#qa-chat").is_visible()
    _shot(page, "08-messages-limites")


def test_submit_to_answer_latency(page):
    """Measured, printed and saved; not asserted (it depends on the machine)."""
    questions = ["Quelle est la peine prévue ?",
                 "Pourquoi le gouvernement veut-il suspendre Shein ?",
                 "Quelles associations récoltent des contenus signalés ?",
                 "Qui a menacé Shein d'interdiction ?",
                 "Qui a saisi le parquet ?"]
    ask(page, "Quelle est la peine prévue ?")  # warm-up: first call of this session
    seconds = [ask(page, q) for q in questions]
    median = statistics.median(seconds)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "latency.json").write_text(json.dumps({
        "what": "seconds from pressing Enter to the new answer visible in Chromium",
        "questions": dict(zip(questions, [round(s, 3) for s in seconds], strict=True)),
        "median_s": round(median, 3),
    }, ensure_ascii=False, indent=2), encoding="utf-8")
    print(f"\nsubmit-to-answer median over {len(seconds)} questions: {median * 1000:.0f} ms")
