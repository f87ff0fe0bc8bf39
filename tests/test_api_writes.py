"""Adding and removing articles through a real server, on a private copy of the corpus
and index: the editor's API, the page's upload behind the editor login, file names,
file types checked by content, upload limits, and writes off on a shared address.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from qa.web.security import EDITOR_COOKIE
from qa.web.server import create_server

from .web_support import copied_assistant, serving

EDITOR = "editeur-" + "w" * 24
BEARER = {"Authorization": f"Bearer {EDITOR}"}
PEINE = "Quelle est la peine prévue ?"
CANNES = ("Palme d'or à Cannes\n\nLe jury du festival de Cannes a attribué samedi la Palme d'or "
          "au film « Les Marées de Bretagne », tourné à Douarnenez par Anne Le Goff.\n")
PALME = "Quel film a reçu la Palme d'or ?"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


def _article(n: int, topic: str) -> bytes:
    return (f"Article {n} sur {topic}\n\nLa flottille de {topic} a quitté le port de Brest "
            f"le {n} mars avec {n * 7} bateaux, selon la capitainerie.\n").encode()


@pytest.fixture(scope="module")
def live(assistant, tmp_path_factory):
    return copied_assistant(assistant, tmp_path_factory.mktemp("api-writes"))


@pytest.fixture(scope="module")
def url(live):
    settings = replace(live.settings, editor_token=EDITOR, max_upload_files=5,
                       max_upload_mb=1, rate_limit=10_000)
    with serving(create_server(settings, live)) as base:
        yield base


@pytest.fixture(scope="module")
def http(url):
    with httpx.Client(base_url=url, timeout=300) as client:
        yield client


def _corpus(live) -> set[str]:
    folder = Path(live.settings.corpus_dir)
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def _answer(http, question: str) -> dict:
    response = http.post("/api/v1/answer", json={"question": question})
    assert response.status_code == 200, response.text
    return response.json()


def _untouched(body: dict) -> dict:
    return {k: body[k] for k in ("text", "answered", "citations")}


def test_an_editor_adds_then_removes_an_article(http, live):
    before = _untouched(_answer(http, PEINE))
    added = http.post("/api/v1/articles", headers=BEARER,
                      files=[("files", ("cannes.txt", CANNES.encode(), "text/plain"))])
    assert added.status_code == 201, added.text
    body = added.json()
    assert [a["id"] for a in body["added"]] == ["cannes"] and body["skipped"] == []
    assert body["total"] == 4 and body["added"][0]["passages"] >= 1
    answer = _answer(http, PALME)
    assert answer["answered"] and "Les Marées de Bretagne" in answer["text"]
    assert answer["citations"][0]["article_id"] == "cannes"
    assert _untouched(_answer(http, PEINE)) == before  # other articles answer the same

    again = http.post("/api/v1/articles", headers=BEARER,
                      files=[("files", ("autre.txt", CANNES.encode()))])
    assert again.status_code == 200 and again.json()["added"] == []
    assert "déjà dans le corpus (article cannes)" in again.json()["skipped"][0]

    removed = http.delete("/api/v1/articles/cannes", headers=BEARER)
    assert removed.status_code == 200 and removed.json() == {"removed": "cannes", "total": 3}
    after = _answer(http, PALME)
    assert all(c["article_id"] != "cannes" for c in after["citations"])
    assert any(p.startswith(".trash/") and p.endswith("cannes.txt") for p in _corpus(live))
    assert _untouched(_answer(http, PEINE)) == before


def test_file_names_are_cleaned_into_the_corpus(http, live, tmp_path_factory):
    corpus = Path(live.settings.corpus_dir)
    names = ["../../evasion-a.md", "/tmp/evasion-b.md", "..\\..\\evasion-c.md",
             "evasion\x00d.md", "é" * 300 + ".md"]
    before = _corpus(live)
    response = http.post("/api/v1/articles", headers=BEARER,
                         files=[("files", (name, _article(n, f"sujet{n}")))
                                for n, name in enumerate(names, start=1)])
    assert response.status_code == 201, response.text
    added = response.json()["added"]
    assert len(added) == 5 and response.json()["skipped"] == []
    new = _corpus(live) - before
    assert len(new) == 5 and all("/" not in name for name in new)  # all right in corpus/
    assert {"evasion-a.md", "evasion-b.md", "evasion-c.md"} <= new
    # httpx sends the NUL percent-encoded; `clean_name` drops a raw one (test_api_names.py)
    assert any(n.startswith("evasion") and n.endswith("d.md") and "\x00" not in n for n in new)
    assert max(len(name) for name in new) <= 120
    for outside in (corpus.parent / "evasion-a.md", corpus.parent.parent / "evasion-a.md",
                    Path("/tmp/evasion-b.md")):
        assert not outside.exists()
    for article in added:
        assert http.delete(f"/api/v1/articles/{article['id']}", headers=BEARER).status_code == 200
    assert http.get("/api/v1/articles").json()["total"] == 3


@pytest.mark.parametrize(("name", "content", "said"), [
    ("photo.md", PNG, "image PNG"),
    ("notes.txt", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", "PDF"),
    ("rapport.pdf", b"Un simple texte.", "n'est pas un PDF"),
    ("latin.txt", "Un été à Brest, déjà.".encode("latin-1"), "UTF-8"),
    ("binaire.html", b"<html>\x00\x01\x02</html>", "binaire"),
])
def test_a_file_type_is_checked_by_its_content(http, live, name, content, said):
    before = _corpus(live)
    refused = http.post("/api/v1/articles", headers=BEARER, files={"files": (name, content)})
    assert refused.status_code == 415, refused.text
    assert said in refused.json()["message"] and name in refused.json()["message"]
    assert _corpus(live) == before and http.get("/api/v1/articles").json()["total"] == 3


def test_a_bad_file_beside_good_ones_is_listed(http, live):
    response = http.post("/api/v1/articles", headers=BEARER, files=[
        ("files", ("bonne.md", _article(9, "voile"))), ("files", ("image.md", PNG))])
    assert response.status_code == 201
    body = response.json()
    assert [a["id"] for a in body["added"]] == ["bonne"]
    assert body["skipped"] == ["image.md : le contenu est un(e) image PNG, pas du texte .md — "
                               "non indexé"]
    assert http.delete("/api/v1/articles/bonne", headers=BEARER).status_code == 200


def test_upload_limits_leave_the_index_untouched(http, live):
    before = _corpus(live)
    many = http.post("/api/v1/articles", headers=BEARER,
                     files=[("files", (f"a{n}.md", _article(n, "x"))) for n in range(6)])
    assert many.status_code == 413 and "au plus 5 par envoi" in many.json()["message"]
    heavy = http.post("/api/v1/articles", headers=BEARER,
                      files={"files": ("lourd.txt", b"Titre\n\n" + b"mot " * 300_000)})
    assert heavy.status_code == 413 and "Mo" in heavy.json()["message"]
    empty = http.post("/api/v1/articles", headers=BEARER, data={"autre": "x"})
    assert empty.status_code == 400 and "files" in empty.json()["message"]
    assert _corpus(live) == before and http.get("/api/v1/articles").json()["total"] == 3


def test_the_page_upload_needs_an_editor_session(url, http, live, tmp_path):
    from gradio_client import Client, handle_file

    before = _corpus(live)
    reader = Client(url + "/", verbose=False)
    status = reader.predict([], api_name="/add_articles")[0]
    assert "Seuls les éditeurs" in status
    path = tmp_path / "plante.txt"
    path.write_text("Texte planté\n\nUn texte planté par un script anonyme sur le serveur.\n")
    with pytest.raises(Exception):  # noqa: B017  the client's file upload is refused first
        reader.predict([handle_file(str(path))], api_name="/add_articles")
    raw = http.post("/gradio_api/upload", files={"files": ("plante.txt", path.read_bytes())})
    assert raw.status_code == 403 and "éditeurs" in raw.json()["message"]
    assert _corpus(live) == before

    assert "Jeton refusé" in http.post("/editor", data={"token": EDITOR + "x"}).text
    login = http.post("/editor", data={"token": EDITOR}, follow_redirects=False)
    assert login.status_code == 303
    cookie = login.cookies[EDITOR_COOKIE]
    assert "httponly" in login.headers["set-cookie"].lower()
    assert EDITOR not in login.headers["set-cookie"]
    http.cookies.clear()
    editor = Client(url + "/", verbose=False, headers={"Cookie": f"{EDITOR_COOKIE}={cookie}"})
    status = editor.predict([handle_file(str(path))], api_name="/add_articles")[0]
    assert "1 article ajouté" in status, status
    assert "plante.txt" in _corpus(live) - before
    assert http.delete("/api/v1/articles/plante", headers=BEARER).status_code == 200


def test_credentials_never_reach_the_logs(http, caplog):
    with caplog.at_level(logging.DEBUG):
        for token in (EDITOR, EDITOR + "-faux", "x" * 30):
            http.delete("/api/v1/articles/nulle-part",
                        headers={"Authorization": f"Bearer {token}"})
            http.post("/editor", data={"token": token}, follow_redirects=False)
    http.cookies.clear()
    assert caplog.records, "the refusals are logged"
    assert EDITOR not in caplog.text and "x" * 30 not in caplog.text


def test_writes_are_off_on_a_shared_address_without_a_token(live):
    settings = replace(live.settings, host="0.0.0.0", editor_token="")
    with serving(create_server(settings, live), host="0.0.0.0") as base, httpx.Client(
            base_url=base, timeout=120) as http:
        refused = http.post("/api/v1/articles", headers={"Authorization": "Bearer quelconque"},
                            files={"files": ("a.md", _article(1, "x"))})
        assert refused.status_code == 403 and "désactivés" in refused.json()["message"]
        assert http.post("/gradio_api/upload", files={"files": ("a.md", b"x")}
                         ).status_code == 403
        config = http.get("/config").json()
        names = {d.get("api_name") for d in config["dependencies"]}
        assert "ask" in names and "add_articles" not in names
        assert "désactivés sur ce serveur" in json.dumps(config, ensure_ascii=False)
        assert "désactivés" in http.get("/editor").text
        assert http.post("/api/v1/answer", json={"question": PEINE}).json()["answered"]
    # on one person's machine without a token, the page writes but the API still wants one
    with serving(create_server(replace(live.settings, editor_token=""), live)) as base:
        refused = httpx.post(base + "/api/v1/articles", files={"files": ("a.md", b"x")})
        assert refused.status_code == 403 and "QA_EDITOR_TOKEN" in refused.json()["message"]
