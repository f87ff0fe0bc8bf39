"""What an upload may bring in, without a server: names and types (`qa.web.intake`)."""

from __future__ import annotations

import pytest

from qa.web.intake import MAX_NAME_CHARS, UploadRefused, check_upload, clean_name, sniff


@pytest.mark.parametrize(("sent", "kept"), [
    ("../../x.md", "x.md"),
    ("/etc/passwd.md", "passwd.md"),
    ("C:\\Users\\a\\b.md", "b.md"),
    ("a\x00b.md", "a-b.md"),
    ("..", "article"),
    ("", "article"),
    (None, "article"),
    (".cache.md", "cache.md"),  # the corpus skips hidden files
    ("Rapport  final (v2).PDF", "Rapport-final-v2.pdf"),
    ("a<b onclick=x>.md", "a-b-onclick-x.md"),
    ("a<script>alert(1)</script>.md", "script.md"),  # "/" ends a folder's name
    ("élection-présidentielle_2027.md", "élection-présidentielle_2027.md"),
    ("x\u202egnp.md", "x-gnp.md"),  # a right-to-left override cannot disguise the suffix
])
def test_names_become_one_harmless_component(sent, kept):
    assert clean_name(sent) == kept


def test_long_names_keep_their_suffix():
    name = clean_name("é" * 300 + ".md")
    assert len(name) == MAX_NAME_CHARS and name.endswith(".md")


def test_sniff_reads_the_content(tmp_path):
    cases = {"ok.md": b"# Titre\n\nTexte.", "ok.pdf": b"%PDF-1.4\n",
             "zip.md": b"PK\x03\x04rest", "elf.txt": b"\x7fELF\x02", "nul.jsonl": b'{"a": "\x00"}',
             "unknown.docx": b"PK\x03\x04"}
    found = {}
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        found[name] = sniff(tmp_path / name)
    assert found["ok.md"] is None and found["ok.pdf"] is None
    assert "ZIP" in found["zip.md"] and "exécutable" in found["elf.txt"]
    assert "binaire" in found["nul.jsonl"]
    assert found["unknown.docx"] is None  # the engine says it does not read .docx


def test_upload_limits():
    check_upload(2, 1000, max_files=2, max_mb=1)
    for count, size, status in ((0, 0, 400), (3, 10, 413), (1, 2 * 1024 * 1024, 413)):
        with pytest.raises(UploadRefused) as refused:
            check_upload(count, size, max_files=2, max_mb=1)
        assert refused.value.status == status
        assert "Rien n'a été indexé" in str(refused.value) or status == 400
