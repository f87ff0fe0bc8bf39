"""Tests of the HTML and PDF readers of qa.corpus, on small real files built here."""

from __future__ import annotations

import io
import socket
from pathlib import Path

import pytest

from qa.corpus import READERS, CorpusFileError, load_corpus, read_articles
from qa.corpus.pdf import _dehyphenate

from .test_corpus import _write

# --------------------------------------------------------------------------- HTML

TITLE = "Le gouvernement engage une procédure de suspension de Shein"
PARAGRAPHS = [
    "PARIS — Sur instruction du Premier ministre, le gouvernement a engagé mercredi une "
    "procédure de suspension de la plateforme Shein, après la découverte de poupées "
    "sexuelles à l’apparence enfantine vendues sur le site.",
    "Le communiqué de Bercy indique que la plateforme dispose de quarante-huit heures pour "
    "présenter ses observations, faute de quoi la suspension sera prononcée par l’autorité "
    "compétente.",
    "Le ministre de l’Économie a rappelé que « la loi s’applique à tous les acteurs du "
    "commerce en ligne », qu’ils soient installés en France ou à l’étranger, et que "
    "d’autres contrôles suivront.",
]
NAV = ["Accueil", "Politique", "Abonnez-vous"]
FOOTER = "© 2025 Le Quotidien — Mentions légales — Gestion des cookies"


def _html_page(paragraphs: list[str], charset: str = "utf-8") -> str:
    # The source wraps each paragraph over two lines, as saved pages often do.
    body = "\n".join("<p>" + p.replace(" ", "\n    ", 1) + "</p>" for p in paragraphs)
    links = "".join(f'<li><a href="/{n.lower()}">{n}</a></li>' for n in NAV)
    return f"""<!DOCTYPE html>
<html lang="fr">
<head>
<meta charset="{charset}">
<title>Shein : la procédure de suspension engagée | Le Quotidien</title>
<meta property="og:title" content="{TITLE}">
<meta property="og:site_name" content="Le Quotidien">
<link rel="canonical" href="https://www.exemple.fr/economie/shein-suspension">
<meta property="article:published_time" content="2025-11-05T09:30:00+01:00">
</head>
<body>
<nav><ul>{links}</ul></nav>
<main><article>
<h1>{TITLE}</h1>
{body}
</article></main>
<footer><p>{FOOTER}</p><p>Suivez-nous sur les réseaux sociaux.</p></footer>
</body>
</html>
"""


EMPTY_PAGE = """<!DOCTYPE html>
<html><head><title>Accueil | Le Quotidien</title></head>
<body><nav><a href="/">Accueil</a> <a href="/politique">Politique</a></nav>
<footer>© 2025 Le Quotidien — Mentions légales</footer></body></html>
"""


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to reach the network fails the test."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def test_readers_include_html_and_pdf() -> None:
    assert {".html", ".htm", ".pdf"} <= set(READERS)


@pytest.mark.usefixtures("offline")
def test_html_main_text_title_and_metadata(tmp_path: Path) -> None:
    path = _write(tmp_path / "c", "Shein Suspension.html", _html_page(PARAGRAPHS))
    (article,) = read_articles(path, tmp_path / "c")
    assert article.id == "shein-suspension"
    assert article.title == TITLE
    assert article.date == "2025-11-05"
    assert article.url == "https://www.exemple.fr/economie/shein-suspension"
    assert article.source == "Le Quotidien"
    assert article.path == "c/Shein Suspension.html"
    # The <h1> is the title, not a paragraph; menus and footers are dropped.
    assert article.text == "\n\n".join(PARAGRAPHS)
    for boilerplate in [*NAV, "Mentions légales", "Suivez-nous"]:
        assert boilerplate not in article.text


def test_html_declared_legacy_charset_and_nfc(tmp_path: Path) -> None:
    decomposed = [p.replace("é", "e\u0301") for p in PARAGRAPHS]
    page = _html_page(decomposed, charset="windows-1252").replace("e\u0301", "é")
    path = _write(tmp_path / "c", "ancien.htm", page.encode("cp1252"))
    (article,) = read_articles(path, tmp_path / "c")
    assert article.text == "\n\n".join(PARAGRAPHS)

    path = _write(tmp_path / "c", "nfd.html", _html_page(decomposed))
    (article,) = read_articles(path, tmp_path / "c")
    assert article.text == "\n\n".join(PARAGRAPHS)


def test_html_without_metadata_falls_back_to_file_name(tmp_path: Path) -> None:
    page = "<html><body><article>" + "".join(f"<p>{p}</p>" for p in PARAGRAPHS)
    path = _write(tmp_path / "c", "sans-meta.html", page + "</article></body></html>")
    (article,) = read_articles(path, tmp_path / "c")
    assert (article.title, article.date, article.url, article.source) == ("sans-meta", "", "", "")
    assert article.text == "\n\n".join(PARAGRAPHS)


def test_html_line_breaks_lists_and_tables_are_paragraphs(tmp_path: Path) -> None:
    long = PARAGRAPHS[1]
    page = (
        f"<html><head><title>Titre</title></head><body><article><h1>Titre</h1>"
        f"<p>{long}<br>Deuxième ligne\u00a0: {long}</p>"
        f"<h2>Les mesures</h2><ul><li>{long}</li><li>{long}</li></ul>"
        "<table><tr><td>Année</td><td>Plaintes</td></tr><tr><td>2024</td><td>12</td></tr></table>"
        f"<p>{long}</p></article></body></html>"
    )
    path = _write(tmp_path / "c", "structure.html", page)
    (article,) = read_articles(path, tmp_path / "c")
    assert article.text.split("\n\n") == [
        long,
        f"Deuxième ligne\u00a0: {long}",
        "Les mesures",
        f"- {long}",
        f"- {long}",
        "Année | Plaintes",
        "2024 | 12",
        long,
    ]


def test_html_without_main_text_is_an_error(tmp_path: Path) -> None:
    path = _write(tmp_path / "c", "accueil.html", EMPTY_PAGE)
    with pytest.raises(CorpusFileError, match="aucun texte principal trouvé dans cette page HTML"):
        read_articles(path, tmp_path / "c")


# --------------------------------------------------------------------------- PDF


def _pdf_string(text: str) -> bytes:
    escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    return b"(" + escaped.encode("cp1252") + b")"


def _pdf(pages: list[list[str]], info: dict[str, str] | None = None) -> bytes:
    """A minimal valid PDF: one Helvetica (WinAnsiEncoding) text line per entry of each page."""
    objects: list[bytes] = [b"", b""]  # catalog and page tree, written once pages are known
    font = len(objects) + 1
    objects.append(
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
    )
    kids = []
    for lines in pages:
        if lines:
            shown = b" T* ".join(_pdf_string(line) + b" Tj" for line in lines)
            stream = b"BT /F1 11 Tf 14 TL 56 780 Td " + shown + b" ET"
        else:  # a scanned page: drawing, no text
            stream = b"0.5 g 56 400 480 380 re f"
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream))
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents %d 0 R "
            b"/Resources << /Font << /F1 %d 0 R >> >> >>" % (len(objects), font)
        )
        kids.append(b"%d 0 R" % len(objects))
    objects[0] = b"<< /Type /Catalog /Pages 2 0 R >>"
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(kids), len(kids))
    trailer = b"<< /Size %d /Root 1 0 R" % (len(objects) + 1 + bool(info))
    if info:
        # Text strings in UTF-16BE with a BOM carry any accent.
        entries = b"".join(
            b"/%s <FEFF%s> " % (key.encode(), value.encode("utf-16-be").hex().encode())
            for key, value in info.items()
        )
        objects.append(b"<< " + entries + b">>")
        trailer += b" /Info %d 0 R" % len(objects)
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n" + trailer + b" >>\nstartxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


# Hard-wrapped like a printed column, with words hyphenated at line ends.
PDF_PAGES = [
    [
        "Shein : la procédure de suspension est engagée",
        "PARIS — Sur instruction du Premier ministre, le gouvernement a engagé",
        "mercredi une procédure de suspension de la plateforme Shein, après la décou-",
        "verte de poupées sexuelles à l’apparence enfantine vendues sur le site.",
        "Le communiqué de Bercy indique que la plateforme dispose de quarante-",
        "huit heures pour présenter ses observations, faute de quoi la suspen-",
        "sion sera prononcée par l’autorité compétente, dans un délai très court.",
    ],
    [
        "Le ministre de l’Économie a rappelé que la loi s’applique à tous les ac-",
        "teurs du commerce en ligne, qu’ils soient installés en France ou à",
        "l’étranger. Le délai de quarante-huit heures court depuis mercredi.",
    ],
]
PDF_TEXT = (
    "PARIS — Sur instruction du Premier ministre, le gouvernement a engagé mercredi une "
    "procédure de suspension de la plateforme Shein, après la découverte de poupées "
    "sexuelles à l’apparence enfantine vendues sur le site.\n\n"
    "Le communiqué de Bercy indique que la plateforme dispose de quarante-huit heures pour "
    "présenter ses observations, faute de quoi la suspension sera prononcée par l’autorité "
    "compétente, dans un délai très court.\n\n"
    "Le ministre de l’Économie a rappelé que la loi s’applique à tous les acteurs du commerce "
    "en ligne, qu’ils soient installés en France ou à l’étranger. Le délai de quarante-huit "
    "heures court depuis mercredi."
)


def test_pdf_text_is_unwrapped_and_dehyphenated(tmp_path: Path) -> None:
    info = {
        "Title": "Shein : la procédure de suspension est engagée",
        "CreationDate": "D:20251105093000+01'00'",
    }
    path = _write(tmp_path / "c", "Shein.pdf", _pdf(PDF_PAGES, info))
    (article,) = read_articles(path, tmp_path / "c")
    assert article.id == "shein"
    assert article.title == "Shein : la procédure de suspension est engagée"
    assert article.date == "2025-11-05"
    assert article.path == "c/Shein.pdf"
    # The first line repeats the /Title; "quarante-huit" keeps its hyphen because the
    # document spells it so elsewhere.
    assert article.text == PDF_TEXT


@pytest.mark.parametrize(
    "info",
    [None, {"Title": "Microsoft Word - article.docx"}, {"Title": "  "}],
    ids=["no-metadata", "producer-title", "blank-title"],
)
def test_pdf_title_falls_back_to_first_line(tmp_path: Path, info: dict[str, str] | None) -> None:
    path = _write(tmp_path / "c", "a.pdf", _pdf(PDF_PAGES, info))
    (article,) = read_articles(path, tmp_path / "c")
    assert article.title == "Shein : la procédure de suspension est engagée"
    assert article.date == ""
    assert article.text == PDF_TEXT


def test_pdf_title_falls_back_to_file_name(tmp_path: Path) -> None:
    path = _write(tmp_path / "c", "note.pdf", _pdf([PDF_PAGES[0][1:]]))
    (article,) = read_articles(path, tmp_path / "c")
    assert article.title == "note"
    assert article.text.startswith("PARIS — Sur instruction")


@pytest.mark.parametrize(
    ("text", "joined"),
    [
        ("la décou-\nverte du site", "la découverte\ndu site"),
        ("la suspen-\nsion.\n\nSuite", "la suspension.\n\nSuite"),  # no blank line added
        ("du peut-\nêtre, comme peut-être.", "du peut-être,\ncomme peut-être."),
        ("Jean-\nMarc Dupont", "Jean-Marc\nDupont"),
        ("les 12-\n13 mai", "les 12-\n13 mai"),
    ],
)
def test_dehyphenate(text: str, joined: str) -> None:
    assert _dehyphenate(text) == joined


def _encrypted(pdf: bytes) -> bytes:
    from pypdf import PdfWriter

    writer = PdfWriter(clone_from=io.BytesIO(pdf))
    writer.encrypt(user_password="secret", owner_password="owner", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


UNREADABLE_PDFS = {
    "corrupt": (lambda: b"%PDF-1.4\n" + bytes(range(256)) * 4, "PDF endommagé"),
    "truncated": (lambda: b"%PDF", "PDF endommagé"),
    "scan": (
        lambda: _pdf([[]]),
        "PDF sans texte extractible (scan ?) : passez-le d'abord dans un OCR",
    ),
    "password": (lambda: _encrypted(_pdf(PDF_PAGES)), "PDF protégé par un mot de passe"),
}


@pytest.mark.parametrize("kind", UNREADABLE_PDFS)
def test_unreadable_pdf_is_an_error(tmp_path: Path, kind: str) -> None:
    build, message = UNREADABLE_PDFS[kind]
    path = _write(tmp_path / "c", "doc.pdf", build())
    with pytest.raises(CorpusFileError) as info:
        read_articles(path, tmp_path / "c")
    assert message in info.value.message
    assert info.value.line is None


# --------------------------------------------------------------------------- load_corpus


@pytest.mark.usefixtures("offline")
def test_bad_html_and_pdf_are_reported_and_the_others_load(tmp_path: Path) -> None:
    folder = tmp_path / "corpus"
    _write(folder, "page.html", _html_page(PARAGRAPHS))
    _write(folder, "article.pdf", _pdf(PDF_PAGES))
    _write(folder, "casse.pdf", b"%PDF-1.7\n" + bytes(range(256)) * 8)
    _write(folder, "scan.pdf", _pdf([[], []]))
    _write(folder, "accueil.htm", EMPTY_PAGE)
    load = load_corpus(folder)
    assert [(a.id, a.path) for a in load.articles] == [
        ("article", "corpus/article.pdf"),
        ("page", "corpus/page.html"),
    ]
    problems = {p.path: p for p in load.problems}
    assert set(problems) == {"corpus/casse.pdf", "corpus/scan.pdf", "corpus/accueil.htm"}
    assert all(p.line is None for p in load.problems)
    assert "PDF endommagé" in problems["corpus/casse.pdf"].message
    assert "OCR" in problems["corpus/scan.pdf"].message
    assert "aucun texte principal" in problems["corpus/accueil.htm"].message
    assert len(load.file_hashes) == 5


def test_unsupported_format_lists_html_and_pdf(tmp_path: Path) -> None:
    folder = tmp_path / "corpus"
    _write(folder, "page.html", _html_page(PARAGRAPHS))
    _write(folder, "rapport.docx", b"PK\x03\x04")
    (problem,) = load_corpus(folder).problems
    assert problem.message == (
        ".docx non pris en charge — formats acceptés : .md, .txt, .jsonl, .html, .htm, .pdf"
    )
