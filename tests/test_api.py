"""The HTTP API through a real server (uvicorn on a free port, real HTTP with httpx):
reading endpoints, the JSON of `qa ask --json`, follow-ups, errors, the request
limits, the read token, the rate limit, and the answers while the index loads.

Nothing here adds or removes articles: `test_api_writes.py` does, on a private copy.
"""

from __future__ import annotations

import html
import json
import threading
from dataclasses import replace

import httpx
import pytest

from qa.web.security import Busy, EngineSlots, RateLimiter, same_secret
from qa.web.server import create_server

from .web_support import serving

EDITOR = "editeur-" + "e" * 24
READER = "lecteur-" + "r" * 24
PEINE = "Quelle est la peine prévue ?"
SHEIN = "Pourquoi le gouvernement veut-il suspendre Shein ?"
INJECTION = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=1</script>'


@pytest.fixture(scope="module")
def url(assistant):
    settings = replace(assistant.settings, editor_token=EDITOR, rate_limit=10_000)
    with serving(create_server(settings, assistant)) as base:
        yield base


@pytest.fixture(scope="module")
def http(url):
    with httpx.Client(base_url=url, timeout=120) as client:
        yield client


def _error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert set(body) >= {"error", "message"} and body["message"], body
    if code:
        assert body["error"] == code, body
    return body


# --------------------------------------------------------------------------- reading

def test_health_says_ready_with_the_corpus(http):
    response = http.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "articles": 3, "passages": 4} or (
        response.json()["status"] == "ready" and response.json()["articles"] == 3)


def test_answer_is_the_json_of_qa_ask(http, assistant):
    response = http.post("/api/v1/answer", json={"question": PEINE})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["x-content-type-options"] == "nosniff"
    got = response.json()
    expected = json.loads(json.dumps(assistant.answer(PEINE).to_dict(), ensure_ascii=False))
    assert set(got["timings"]) == set(expected["timings"])
    got.pop("timings"), expected.pop("timings")
    assert got == expected
    assert got["answered"] and "deux ans d’emprisonnement" in got["text"]
    assert got["citations"][0]["article_id"] == "grok-deepfakes-enquete"


def test_follow_up_is_read_with_the_previous_questions(http):
    response = http.post("/api/v1/answer", json={"question": "Et qui l'a annoncé ?",
                                                 "previous": [SHEIN]})
    body = response.json()
    assert response.status_code == 200 and body["answered"]
    assert "Shein" in body["question"] and body["question"].endswith("Et qui l'a annoncé ?")
    assert {c["article_id"] for c in body["citations"]} == {"shein-procedure-suspension"}
    alone = http.post("/api/v1/answer", json={"question": "Et qui l'a annoncé ?"}).json()
    assert alone["question"] == "Et qui l'a annoncé ?"


def test_k_and_retriever_are_honoured(http):
    body = http.post("/api/v1/answer", json={"question": SHEIN, "k": 1,
                                             "retriever": "bm25"}).json()
    assert len(body["passages"]) == 1 and body["passages"][0]["dense_score"] is None
    found = http.post("/api/v1/search", json={"question": "Shein suspension", "k": 2,
                                              "retriever": "dense"}).json()
    assert found["retriever"] == "dense" and [p["rank"] for p in found["passages"]] == [1, 2]
    first = found["passages"][0]
    assert first["bm25_score"] is None and first["dense_rank"] == 1
    assert first["article_id"].startswith("shein")
    hybrid = http.post("/api/v1/search", json={"question": "Shein suspension"}).json()
    assert hybrid["retriever"] == "hybrid" and len(hybrid["passages"]) == 4  # all the passages


def test_articles_are_listed_with_their_passages(http):
    body = http.get("/api/v1/articles").json()
    assert body["total"] == 3 and body["offset"] == 0
    ids = [a["id"] for a in body["articles"]]
    assert ids == sorted(ids) == ["grok-deepfakes-enquete", "shein-menace-interdiction",
                                  "shein-procedure-suspension"]
    assert sum(a["passages"] for a in body["articles"]) == 4
    assert all("path" not in a for a in body["articles"])  # no server paths
    page = http.get("/api/v1/articles", params={"offset": 1, "limit": 1}).json()
    assert [a["id"] for a in page["articles"]] == ["shein-menace-interdiction"]


def test_markup_in_a_question_comes_back_inert(http):
    response = http.post("/api/v1/answer", json={"question": INJECTION + " " + PEINE})
    assert response.status_code == 200
    raw = response.text
    assert "<script" not in raw and "<img" not in raw and "\\u003cscript" in raw
    assert response.json()["question"].startswith('<img src=x onerror="window.__pwned=1">')


# --------------------------------------------------------------------------- errors

@pytest.mark.parametrize(("body", "code"), [
    ({"question": ""}, "empty_question"),
    ({"question": " \u200b\n "}, "empty_question"),
    ({"question": "x" * 2001}, "question_too_long"),
    ({"question": PEINE, "previous": ["x" * 2001]}, "question_too_long"),
    ({"question": PEINE, "previous": ["Et ?"] * 51}, "invalid_request"),
    ({"question": PEINE, "k": 0}, "invalid_request"),
    ({"question": PEINE, "k": 101}, "invalid_request"),
    ({"question": PEINE, "retriever": "google"}, "invalid_request"),
    ({"question": PEINE, "extra": 1}, "invalid_request"),
    ({"question": 42}, "invalid_request"),
    ({}, "invalid_request"),
])
def test_bad_questions_are_400_in_french(http, body, code):
    error = _error(http.post("/api/v1/answer", json=body), 400, code)
    assert "question" in error["message"].lower() or "requête" in error["message"].lower()


def test_question_length_limit_is_named(http):
    error = _error(http.post("/api/v1/search", json={"question": "é" * 2001}), 400,
                   "question_too_long")
    assert "2001 caractères" in error["message"] and "2000" in error["message"]
    assert http.post("/api/v1/search", json={"question": "é" * 2000}).status_code == 200


def test_broken_json_and_unknown_addresses(http):
    _error(http.post("/api/v1/answer", content=b"{pas du json",
                     headers={"content-type": "application/json"}), 400, "invalid_request")
    _error(http.get("/api/v1/nulle-part"), 404, "not_found")
    _error(http.get("/api/v2/answer"), 404)
    _error(http.put("/api/v1/answer", json={}), 405)


def test_oversized_bodies_are_refused_before_being_read(http):
    big = json.dumps({"question": PEINE, "previous": ["x" * 1000] * 1100}).encode()
    _error(http.post("/api/v1/answer", content=big,
                     headers={"content-type": "application/json"}), 413, "too_large")

    def chunks():  # no Content-Length: the body is counted as it arrives
        yield b'{"question": "'
        for _ in range(300):
            yield b"x" * 4096
        yield b'"}'

    _error(http.post("/api/v1/answer", content=chunks(),
                     headers={"content-type": "application/json"}), 413, "too_large")


def test_writes_need_the_editor_token(http):
    files = {"files": ("note.md", b"# Note\n\nUn texte.")}
    _error(http.post("/api/v1/articles", files=files), 401, "missing_token")
    refused = http.post("/api/v1/articles", files=files,
                        headers={"Authorization": "Bearer " + EDITOR[:-1] + "x"})
    assert _error(refused, 401, "bad_token") and refused.headers["www-authenticate"]
    _error(http.delete("/api/v1/articles/grok-deepfakes-enquete",
                       headers={"Authorization": "Basic " + EDITOR}), 401, "missing_token")
    _error(http.delete("/api/v1/articles/grok-deepfakes-enquete"), 401, "missing_token")
    assert http.get("/api/v1/articles").json()["total"] == 3
    # the right token reaches the endpoint: an unknown id is the endpoint's 404
    _error(http.delete("/api/v1/articles/nulle-part",
                       headers={"Authorization": f"Bearer {EDITOR}"}), 404, "unknown_article")


def test_docs_describe_every_endpoint_without_the_network(http):
    schema = http.get("/openapi.json").json()
    assert {"/api/v1/answer", "/api/v1/search", "/api/v1/articles",
            "/api/v1/articles/{article_id}", "/healthz"} <= set(schema["paths"])
    assert set(schema["paths"]["/api/v1/articles"]) == {"get", "post"}
    upload = schema["paths"]["/api/v1/articles"]["post"]
    assert "multipart/form-data" in upload["requestBody"]["content"]
    assert {"401", "403", "413", "415", "429"} <= set(upload["responses"])
    assert "HTTPBearer" in schema["components"]["securitySchemes"]
    page = http.get("/docs")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    for path in ("/api/v1/answer", "/api/v1/articles/{article_id}", "multipart/form-data",
                 "Authorization", "curl"):
        assert path in html.unescape(page.text)
    assert "422" not in json.dumps(schema)  # invalid requests are 400s here
    assert "<script" not in page.text and "cdn" not in page.text.lower()


# --------------------------------------------------------------------------- other servers

def test_read_token_protects_reading_but_not_health(assistant):
    settings = replace(assistant.settings, editor_token=EDITOR, read_token=READER)
    with serving(create_server(settings, assistant)) as base, httpx.Client(
            base_url=base, timeout=120) as http:
        assert http.get("/healthz").status_code == 200
        _error(http.get("/api/v1/articles"), 401, "missing_token")
        _error(http.post("/api/v1/answer", json={"question": PEINE},
                         headers={"Authorization": "Bearer " + READER.upper()}), 401, "bad_token")
        for token in (READER, EDITOR):
            ok = http.post("/api/v1/answer", json={"question": PEINE},
                           headers={"Authorization": f"Bearer {token}"})
            assert ok.status_code == 200 and ok.json()["answered"]
        # a reader's token does not write
        _error(http.post("/api/v1/articles", files={"files": ("a.md", b"x")},
                         headers={"Authorization": f"Bearer {READER}"}), 403, "editors_only")
        # the page asks for the read token too (Gradio's login)
        assert http.get("/config").status_code in (401, 403)


def test_rate_limit_is_per_client_and_said_in_french(assistant):
    from gradio_client import Client

    settings = replace(assistant.settings, rate_limit=3)
    with serving(create_server(settings, assistant)) as base, httpx.Client(
            base_url=base, timeout=120) as http:
        for _ in range(3):
            assert http.get("/api/v1/articles").status_code == 200
        limited = http.post("/api/v1/answer", json={"question": PEINE})
        error = _error(limited, 429, "rate_limited")
        assert "au plus 3 par minute" in error["message"]
        assert int(limited.headers["retry-after"]) >= 1
        assert http.get("/healthz").status_code == 200  # probes are never limited
        # the page's questions count for the same client, and the chat says why
        _, chat, _ = Client(base + "/", verbose=False).predict(PEINE, [], api_name="/ask")
        assert "Trop de requêtes" in json.dumps(chat, ensure_ascii=False)


def test_while_loading_health_api_and_page_say_503(assistant):
    release = threading.Event()

    def load():
        release.wait(timeout=60)
        return assistant

    with serving(create_server(assistant.settings, load=load)) as base, httpx.Client(
            base_url=base, timeout=120) as http:
        assert http.get("/healthz").json() == {"status": "loading"}
        assert http.get("/healthz").status_code == 503
        error = _error(http.post("/api/v1/answer", json={"question": PEINE}), 503, "loading")
        assert "chargement" in error["message"]
        page = http.get("/")
        assert page.status_code == 503 and "chargement" in page.text
        assert page.headers["retry-after"] == "5"
        release.set()
        for _ in range(600):
            if http.get("/healthz").status_code == 200:
                break
            threading.Event().wait(0.1)
        assert http.get("/healthz").json()["status"] == "ready"
        assert http.post("/api/v1/answer", json={"question": PEINE}).json()["answered"]
        assert http.get("/").status_code == 200


# --------------------------------------------------------------------------- the parts

def test_rate_limiter_refills_at_its_pace():
    limiter = RateLimiter(per_minute=2)
    assert limiter.check("a") == 0 and limiter.check("a") == 0
    wait = limiter.check("a")
    assert 25 < wait <= 30  # one request back every 30 s
    assert limiter.check("b") == 0  # per client
    assert RateLimiter(per_minute=0).check("a") == 0


def test_engine_slots_bound_the_waiting_line():
    slots = EngineSlots(concurrency=1, waiting=1)
    inside, leave = threading.Event(), threading.Event()

    def hold():
        with slots.slot():
            inside.set()
            leave.wait(10)

    holders = [threading.Thread(target=hold) for _ in range(2)]
    holders[0].start()
    inside.wait(10)
    holders[1].start()  # waits for the slot: the line is now full
    threading.Event().wait(0.2)
    with pytest.raises(Busy, match="saturé"), slots.slot():
        pass
    leave.set()
    for thread in holders:
        thread.join(10)
    with slots.slot():
        pass


def test_secrets_are_compared_whole():
    assert same_secret(EDITOR, EDITOR) and not same_secret(EDITOR[:-1], EDITOR)
    assert not same_secret("", "") and not same_secret(None, EDITOR)


def test_gradio_queue_full_is_said_in_french():
    import asyncio

    from qa.web.guard import _secured

    sent = []

    async def send(message):
        sent.append(message)

    async def run():
        secured = _secured(send, "/gradio_api/queue/join")
        await secured({"type": "http.response.start", "status": 503,
                       "headers": [(b"content-type", b"application/json"),
                                   (b"content-length", b"31")]})
        await secured({"type": "http.response.body", "body": b'{"detail":"Queue is full."}'})

    asyncio.run(run())
    assert sent[0]["status"] == 503
    assert (b"x-content-type-options", b"nosniff") in sent[0]["headers"]
    body = json.loads(sent[1]["body"])
    assert "saturé" in body["detail"]
    length = dict(sent[0]["headers"])[b"content-length"]
    assert int(length) == len(sent[1]["body"])


def test_editor_sessions_expire_and_follow_the_token():
    from qa.web.security import SESSION_SECONDS, Access

    access = Access(editor_token=EDITOR, local=False)
    cookie = access.new_session(now=1_000_000)
    assert access.valid_session(cookie, now=1_000_000 + SESSION_SECONDS - 1)
    assert not access.valid_session(cookie, now=1_000_000 + SESSION_SECONDS + 1)
    assert not Access(editor_token=EDITOR + "2", local=False).valid_session(cookie, now=1_000_000)
    forged = f"{10**12}.{cookie.partition('.')[2]}"
    assert not access.valid_session(forged, now=1_000_000)
    assert EDITOR not in repr(access) and EDITOR not in cookie
