"""Eight readers at once: each session, driven by `gradio_client`, gets its own answer."""

from __future__ import annotations

import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from qa.web.render import inert

from .web_support import served

# question → (a phrase its answer must quote, the article its first source must come from)
EXPECTED = {
    "Quelle est la peine prévue ?":
        (r"deux ans d.emprisonnement", "La justice enquête sur les deepfakes"),
    "Pourquoi le gouvernement veut-il suspendre Shein ?":
        (r"procédure de suspension du site Shein", "Le gouvernement engage une procédure"),
    "Quelles associations récoltent des contenus signalés ?":
        (r"Stop Fisha et Respect Zone", "La justice enquête sur les deepfakes"),
    "Qui a menacé Shein d'interdiction ?":
        (r"a menacé Shein d.interdiction", "Roland Lescure menace Shein"),
    "Qui a saisi le parquet ?":
        (r"Arthur Delaporte", "La justice enquête sur les deepfakes"),
    "Que s'est-il passé avec Wish en 2021 ?":
        (r"Wish avait fait l.objet de mesures de déréférencement", "Roland Lescure menace Shein"),
    "Qu'a découvert la DGCCRF ?":
        (r"poupées sexuelles à l.effigie d.enfants", "Roland Lescure menace Shein"),
    "Quelle est la capitale de l'Australie ?":
        (r"Je ne trouve pas la réponse", "Passages les plus proches"),
}
SESSIONS = len(EXPECTED)


@pytest.fixture(scope="module")
def app_url(assistant):
    with served(assistant) as url:
        yield url


def _text(message: dict) -> str:
    """The text of a chat message as the client returns it (a string or content blocks)."""
    content = message["content"]
    if isinstance(content, str):
        return content
    return " ".join(part.get("text", "") for part in content if isinstance(part, dict))


def test_eight_sessions_at_once_each_get_their_own_answer(app_url):
    from gradio_client import Client

    start = threading.Barrier(SESSIONS)

    def session(question: str):
        client = Client(app_url, verbose=False)
        start.wait(timeout=60)  # every session asks at the same moment
        cleared, chat, panel = client.predict(question, [], api_name="/ask")
        follow_up = client.predict("Et pourquoi ?", chat, api_name="/ask")
        return question, cleared, chat, panel, follow_up

    started = time.perf_counter()
    with ThreadPoolExecutor(SESSIONS) as pool:
        results = list(pool.map(session, EXPECTED))
    print(f"\n{SESSIONS} sessions, 2 questions each: {time.perf_counter() - started:.2f} s in all")

    for question, cleared, chat, panel, follow_up in results:
        quote, source = EXPECTED[question]
        assert cleared == ""
        assert len(chat) == 2 and inert(question) in _text(chat[0])
        assert re.search(quote, _text(chat[1])), (question, _text(chat[1])[:300])
        assert source in panel, (question, panel[:300])
        # the session's state is its own: this was its first question, then its second
        assert "Question 1 :" in panel and "Question 2 :" not in panel
        _, second_chat, second_panel = follow_up
        assert len(second_chat) == 4 and "Question 2 :" in second_panel
        assert "Question 3 :" not in second_panel
        assert f"Comprise comme la suite de « {inert(question)} »" in second_panel
