"""Tests of qa.corpus: the formats, the bad inputs it reports, file names, the default corpus."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from qa.corpus import (
    READERS,
    CorpusFileError,
    CorpusProblem,
    corpus_key,
    id_taken_message,
    key_of_shown,
    load_corpus,
    read_articles,
    shown_path,
)
from qa.corpus.source import slugify
from qa.errors import CorpusError, QAError

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "corpus"

GOOD_MD = """---
id: bon-article
title: Un bon article
source: POLITICO
date: 2025-11-05
tag: Test
---

Premier paragraphe.

Deuxième paragraphe.
"""


def _write(folder: Path, name: str, content: str | bytes) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "corpus"
    _write(folder, "bon.md", GOOD_MD)
    return folder


# --------------------------------------------------------------------------- default corpus

EXPECTED = {
    "grok-deepfakes-enquete": (
        "La justice enquête sur les deepfakes sexuels générés par Grok sur X",
        "2026-01-02",
        11,
    ),
    "shein-procedure-suspension": (
        "Le gouvernement engage une procédure de suspension de Shein",
        "2025-11-05",
        4,
    ),
    "shein-menace-interdiction": (
        "Roland Lescure menace Shein d’interdiction en France",
        "2025-11-03",
        6,
    ),
}


def test_default_corpus_loads_without_problem() -> None:
    load = load_corpus(CORPUS)
    assert load.problems == ()
    assert {a.id for a in load.articles} == set(EXPECTED)
    assert set(load.file_hashes) == {f"{name}.md" for name in EXPECTED}
    for article in load.articles:
        title, date, paragraphs = EXPECTED[article.id]
        assert article.title == title
        assert article.date == date
        assert article.source == "POLITICO"
        assert article.tag == "Protection des mineurs en ligne"
        assert article.language == "fr"
        assert article.path == f"corpus/{article.id}.md"
        assert article.text.startswith("PARIS — ")
        assert len(article.text.split("\n\n")) == paragraphs
        assert "Tag -" not in article.text
        assert "\n\n\n" not in article.text
        # Typographic punctuation is kept in the text; only matching folds it.
        assert "’" in article.text


def test_default_corpus_has_seed_words_exactly() -> None:
    # The seed article as the project received it, kept beside the tests: the corpus
    # file made from it must hold the same words in the same order.
    seed = Path(__file__).parent / "fixtures" / "seed-article-000.txt"
    expected = seed.read_text(encoding="utf-8").split()
    tag_at = expected.index("Tag")
    assert expected[tag_at : tag_at + 7] == [
        "Tag",
        "-",
        "Protection",
        "des",
        "mineurs",
        "en",
        "ligne",
    ]
    del expected[tag_at : tag_at + 7]
    articles = {a.id: a for a in load_corpus(CORPUS).articles}
    order = ["grok-deepfakes-enquete", "shein-procedure-suspension", "shein-menace-interdiction"]
    assert [w for key in order for w in articles[key].text.split()] == expected


def test_evals_match_the_corpus() -> None:
    from qa.text import fold

    texts = [fold(a.text) for a in load_corpus(CORPUS).articles]
    extra = [
        json.loads(line)
        for line in (ROOT / "evals" / "answerable_extra_fr.jsonl").read_text().splitlines()
    ]
    assert len(extra) == 12
    for row in extra:
        owners = [t for t in texts if fold(row["evidence"]) in t]
        assert len(owners) == 1, row["id"]
        assert all(fold(answer) in owners[0] for answer in row["answers"]), row["id"]
    unanswerable = [
        json.loads(line)
        for line in (ROOT / "evals" / "unanswerable_fr.jsonl").read_text().splitlines()
    ]
    assert len(unanswerable) == 20
    assert all(
        r["answers"] == [] and r["evidence"] is None and r["answerable"] is False
        for r in unanswerable
    )


# --------------------------------------------------------------------------- formats


def test_markdown_front_matter(corpus: Path) -> None:
    (article,) = load_corpus(corpus).articles
    assert article.id == "bon-article"
    assert article.title == "Un bon article"
    assert article.date == "2025-11-05"
    assert article.source == "POLITICO"
    assert article.tag == "Test"
    assert article.language == "fr"
    assert article.text == "Premier paragraphe.\n\nDeuxième paragraphe."
    assert article.path == "corpus/bon.md"


def test_markdown_heading_is_title_and_leaves_the_body(tmp_path: Path) -> None:
    path = _write(tmp_path / "c", "Mon Article.md", "# Le titre\n\nLe texte.\n")
    (article,) = read_articles(path, tmp_path / "c")
    assert article.title == "Le titre"
    assert article.text == "Le texte."
    assert article.id == "mon-article"


def test_markdown_front_matter_title_wins_over_heading(tmp_path: Path) -> None:
    text = "---\ntitle: Titre YAML\n---\n# Autre titre\n\nLe texte.\n"
    path = _write(tmp_path / "c", "a.md", text)
    (article,) = read_articles(path, tmp_path / "c")
    assert article.title == "Titre YAML"
    assert article.text == "# Autre titre\n\nLe texte."


def test_markdown_hard_wrapped_body_is_unwrapped(tmp_path: Path) -> None:
    body = (
        "Le parquet a été saisi ce 2\njanvier par deux députés.\n"
        "Ils ont confirmé avoir fait\ndes signalements à la justice.\n"
    )
    path = _write(tmp_path / "c", "a.md", "---\ntitle: T\n---\n" + body)
    (article,) = read_articles(path, tmp_path / "c")
    assert article.text == (
        "Le parquet a été saisi ce 2 janvier par deux députés.\n\n"
        "Ils ont confirmé avoir fait des signalements à la justice."
    )


def test_text_is_nfc_and_keeps_typographic_quotes(tmp_path: Path) -> None:
    decomposed = "Le de\u0301lit “grave” d’Arthur.\n"
    path = _write(tmp_path / "c", "a.md", decomposed)
    (article,) = read_articles(path, tmp_path / "c")
    assert article.text == "Le délit “grave” d’Arthur."


@pytest.mark.parametrize(
    ("content", "title", "text"),
    [
        ("Un titre court\n\nLe corps du texte.\n", "Un titre court", "Le corps du texte."),
        ("Un titre court\nLe corps du texte.\n", "Un titre court", "Le corps du texte."),
        ("Une seule ligne de texte.\n", "note", "Une seule ligne de texte."),
        ("x" * 201 + "\nLa suite.\n", "note", "x" * 201 + "\n\nLa suite."),
    ],
)
def test_txt_reader(tmp_path: Path, content: str, title: str, text: str) -> None:
    path = _write(tmp_path / "c", "note.txt", content)
    (article,) = read_articles(path, tmp_path / "c")
    assert (article.id, article.title, article.text) == ("note", title, text)


def test_txt_hard_wrapped_first_line_is_not_a_title(tmp_path: Path) -> None:
    seed_like = (
        "PARIS — La justice française va enquêter sur la prolifération, sur la plateforme\n"
        "X, de deepfakes à caractère sexuel générés par l’intelligence artificielle (IA)\n"
        "Grok, a indiqué le parquet de Paris à POLITICO.\n"
        "Le parquet a en effet été saisi, ce 2 janvier, par les députés Arthur Delaporte\n"
        "(PS) et Eric Bothorel (apparenté Ensemble pour la République) après que des\n"
        "milliers de deepfakes non consentis à caractère sexuel ont été générés par Grok\n"
        "et publiés sur X.\n"
    )
    path = _write(tmp_path / "c", "seed.txt", seed_like)
    (article,) = read_articles(path, tmp_path / "c")
    assert article.title == "seed"
    assert article.text.split("\n\n")[0].endswith("le parquet de Paris à POLITICO.")
    assert len(article.text.split("\n\n")) == 2


def test_txt_title_above_hard_wrapped_body(tmp_path: Path) -> None:
    content = (
        "Deepfakes : enquête sur X\n"
        "PARIS — La justice française va enquêter sur la prolifération, sur la plateforme\n"
        "X, de deepfakes à caractère sexuel générés par l’intelligence artificielle (IA)\n"
        "Grok, a indiqué le parquet de Paris à POLITICO.\n"
    )
    path = _write(tmp_path / "c", "a.txt", content)
    (article,) = read_articles(path, tmp_path / "c")
    assert article.title == "Deepfakes : enquête sur X"
    assert article.text.startswith("PARIS —")
    assert "\n" not in article.text


def test_jsonl_reader(tmp_path: Path) -> None:
    rows = [
        {"id": "A 1", "title": "Titre A", "text": "Texte A.", "url": "https://x", "date": "2025"},
        {"text": "Un texte sans titre ni identifiant, avec assez de mots pour un titre."},
        {"id": "c", "title": "C", "text": "Ligne un.\nLigne deux.", "language": "en"},
    ]
    path = _write(tmp_path / "c", "lot.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n")
    a, b, c = read_articles(path, tmp_path / "c")
    assert (a.id, a.title, a.text, a.url, a.date, a.language) == (
        "a-1",
        "Titre A",
        "Texte A.",
        "https://x",
        "2025",
        "fr",
    )
    assert b.id == "lot-2"
    assert b.title.startswith("Un texte sans titre")
    assert c.text == "Ligne un.\n\nLigne deux."
    assert c.language == "en"
    assert {a.path, b.path, c.path} == {"c/lot.jsonl"}


def test_bom_is_accepted(tmp_path: Path) -> None:
    path = _write(tmp_path / "c", "bom.md", "\ufeff---\ntitle: Avec BOM\n---\nTexte.\n".encode())
    (article,) = read_articles(path, tmp_path / "c")
    assert article.title == "Avec BOM"
    assert article.text == "Texte."


@pytest.mark.parametrize(
    ("raw", "slug"),
    [("Grok Deepfakes — Enquête", "grok-deepfakes-enquete"), ("a_b-c", "a_b-c"), ("!!!", "")],
)
def test_slugify(raw: str, slug: str) -> None:
    assert slugify(raw) == slug


def test_readers_registry() -> None:
    assert set(READERS) == {".md", ".txt", ".jsonl", ".html", ".htm", ".pdf"}


# --------------------------------------------------------------------------- bad input


BAD_FILES = [
    ("vide.md", b"", None, "fichier vide"),
    ("blanc.txt", b"  \n\t\n", None, "fichier vide"),
    ("entete-seule.md", b"---\ntitle: T\n---\n\n", 4, "aucun texte"),
    ("latin1.txt", "Première ligne\nDéjà\n".encode("latin-1"), 1, "UTF-8"),
    ("binaire.txt", b"abc\x00def", None, "binaire"),
    ("rapport.docx", b"PK\x03\x04", None, ".docx non pris en charge"),
    ("yaml.md", b"---\ntitle: [oops\n---\nTexte.\n", 3, "en-tete YAML invalide"),
    ("ouvert.md", b"---\ntitle: T\nTexte.\n", 1, "non ferme"),
    ("liste.md", b"---\n- a\n- b\n---\nTexte.\n", 2, "cle: valeur"),
]


@pytest.mark.parametrize(("name", "data", "line", "needle"), BAD_FILES)
def test_bad_file_is_reported_and_good_ones_load(
    corpus: Path, name: str, data: bytes, line: int | None, needle: str
) -> None:
    from qa.text import fold

    _write(corpus, name, data)
    load = load_corpus(corpus)
    assert [a.id for a in load.articles] == ["bon-article"]
    (problem,) = load.problems
    assert problem.path == f"corpus/{name}"
    assert problem.line == line
    assert fold(needle) in fold(problem.message)
    assert str(problem).startswith(f"corpus/{name}")
    # Every considered file is hashed, readable or not.
    assert load.file_hashes[name] == hashlib.sha256(data).hexdigest()


def test_invalid_utf8_message_gives_offset_and_fix(corpus: Path) -> None:
    _write(corpus, "latin1.txt", "Titre\nDéjà vu\n".encode("latin-1"))
    (problem,) = load_corpus(corpus).problems
    assert problem.line == 2
    assert "position 7" in problem.message
    assert "UTF-8" in problem.message and "réenregistrez" in problem.message


def test_jsonl_bad_lines_are_reported_and_others_load(corpus: Path) -> None:
    lines = [
        json.dumps({"id": "ok-1", "title": "Ok", "text": "Bon texte."}),
        "",
        "{pas du json",
        json.dumps(["une", "liste"]),
        json.dumps({"id": "sans-texte", "title": "Vide"}),
        json.dumps({"id": "ok-2", "text": "Autre bon texte."}),
    ]
    _write(corpus, "lot.jsonl", "\n".join(lines))
    load = load_corpus(corpus)
    assert [a.id for a in load.articles] == ["bon-article", "ok-1", "ok-2"]
    assert [(p.path, p.line) for p in load.problems] == [
        ("corpus/lot.jsonl", 3),
        ("corpus/lot.jsonl", 4),
        ("corpus/lot.jsonl", 5),
    ]
    assert str(load.problems[0]) == (
        "corpus/lot.jsonl:3: ligne JSON invalide (Expecting property name enclosed in double "
        "quotes) — corrigez ou supprimez cette ligne"
    )
    assert "objet JSON" in load.problems[1].message
    assert '"text"' in load.problems[2].message


def test_read_articles_raises_on_a_bad_jsonl_line(tmp_path: Path) -> None:
    path = _write(tmp_path / "c", "lot.jsonl", '{"text": "Bon."}\n[1]\n')
    with pytest.raises(CorpusFileError) as info:
        read_articles(path, tmp_path / "c")
    assert info.value.line == 2
    assert isinstance(info.value, QAError)


def test_duplicate_id_names_the_first_file(corpus: Path) -> None:
    _write(corpus, "sous/doublon.md", GOOD_MD.replace("Un bon article", "Autre"))
    _write(corpus, "lot.jsonl", json.dumps({"id": "bon-article", "text": "Encore."}) + "\n")
    load = load_corpus(corpus)
    assert [(a.id, a.title) for a in load.articles] == [("bon-article", "Un bon article")]
    assert [(p.path, p.line) for p in load.problems] == [
        ("corpus/lot.jsonl", 1),
        ("corpus/sous/doublon.md", None),
    ]
    assert all("corpus/bon.md" in p.message for p in load.problems)


def test_walk_is_sorted_recursive_and_skips_hidden_and_readme(corpus: Path) -> None:
    _write(corpus, "README.md", "# Lisez-moi\n\nPas un article.\n")
    _write(corpus, ".cache.md", "Caché.\n")
    _write(corpus, ".git/config.md", "Caché.\n")
    _write(corpus, "a/z.md", "Z.\n")
    _write(corpus, "a/b.txt", "B.\n")
    _write(corpus, "a/README.md", "Un article nommé README dans un sous-dossier.\n")
    load = load_corpus(corpus)
    assert [a.path for a in load.articles] == [
        "corpus/a/README.md",
        "corpus/a/b.txt",
        "corpus/a/z.md",
        "corpus/bon.md",
    ]
    assert set(load.file_hashes) == {"a/README.md", "a/b.txt", "a/z.md", "bon.md"}
    assert load.problems == ()


def test_missing_folder_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(CorpusError) as info:
        load_corpus(tmp_path / "absent")
    assert "absent" in str(info.value)
    assert "QA_CORPUS_DIR" in str(info.value)


def test_empty_folder_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "corpus").mkdir()
    with pytest.raises(CorpusError, match="Aucun article"):
        load_corpus(tmp_path / "corpus")


def test_folder_with_only_bad_files_lists_problems(tmp_path: Path) -> None:
    folder = tmp_path / "corpus"
    _write(folder, "vide.md", "")
    _write(folder, "doc.pdf", b"%PDF")
    with pytest.raises(CorpusError) as info:
        load_corpus(folder)
    message = str(info.value)
    assert "corpus/vide.md" in message and "corpus/doc.pdf" in message


def test_problem_str() -> None:
    assert str(CorpusProblem("corpus/a.jsonl", 3, "oups")) == "corpus/a.jsonl:3: oups"
    assert str(CorpusProblem("corpus/a.md", None, "oups")) == "corpus/a.md: oups"


# --------------------------------------------------------------------------- file names


def test_names_of_a_file_agree(corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(corpus, "a/b.md", "B.\n")
    (article,) = read_articles(path, corpus)
    assert article.path == shown_path(path, corpus) == "corpus/a/b.md"
    assert key_of_shown(article.path) == corpus_key(corpus, path) == "a/b.md"
    assert "a/b.md" in load_corpus(corpus).file_hashes
    # As `qa remove` rebuilds it: a resolved path under a corpus folder named relatively.
    monkeypatch.chdir(corpus.parent)
    assert corpus_key(Path("corpus"), (Path(".") / article.path).resolve()) == "a/b.md"
    assert key_of_shown("") == ""


def test_id_taken_message() -> None:
    assert id_taken_message("x", "corpus/a.md") == "identifiant « x » déjà utilisé par corpus/a.md"
