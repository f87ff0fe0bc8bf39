"""Tests of qa.text: folding, unwrapping, sentence spans and BM25 tokens."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest
import Stemmer

from qa.corpus import load_corpus
from qa.text import (
    STOP_WORDS,
    bm25_tokenize,
    bm25_tokens,
    fold,
    nfc,
    split_sentences,
    unwrap,
    wrap_width,
)

ROOT = Path(__file__).resolve().parent.parent
SEED = Path(__file__).parent / "fixtures" / "seed-article-000.txt"
CORPUS = ROOT / "corpus"

ONE_SENTENCE = (
    "“Ces faits ont été joints à l’enquête déjà ouverte sur X, sur le fondement de "
    "l’article 226-8-1 du code pénal”, précise le parquet, qui rappelle que ce délit "
    "est puni de deux ans d’emprisonnement et 60 000 euros d’amende."
)

# Article 1 as hard-wrapped at 80 columns in the seed file (kept here so the test
# does not depend on the shared folder).
WRAPPED_ARTICLE_1 = """\
PARIS — La justice française va enquêter sur la prolifération, sur la plateforme
X, de deepfakes à caractère sexuel générés par l’intelligence artificielle (IA)
Grok, a indiqué le parquet de Paris à POLITICO.
Le parquet a en effet été saisi, ce 2 janvier, par les députés Arthur Delaporte
(PS) et Eric Bothorel (apparenté Ensemble pour la République) après que des
milliers de deepfakes non consentis à caractère sexuel ont été générés par Grok
et publiés sur X.
“Ces faits ont été joints à l’enquête déjà ouverte sur X, sur le fondement de
l’article 226-8-1 du code pénal”, précise le parquet, qui rappelle que ce délit
est puni de deux ans d’emprisonnement et 60 000 euros d’amende.
Les deux parlementaires ont confirmé à POLITICO avoir effectué des signalements
à la justice sur la base de l’article 40 du code de procédure pénale.
Depuis deux jours, des centaines de femmes et d’adolescents témoignent du fait
que leurs photos, publiées sur les réseaux sociaux, sont “dénudées” à la demande
d’autres internautes par Grok, l’intelligence artificielle intégrée au réseau
social X.
Ces montages photographiques générés par IA portent atteinte “à la dignité des
personnes représentées” estime Arthur Delaporte dans son courrier à la
procureure, consulté par POLITICO.
Contacté par POLITICO, le cabinet de la ministre déléguée au numérique indique
se pencher sur les problèmes posés par Grok, sans plus de précision pour
l’instant. La haut-commissaire à l’Enfance Sarah El Haïry s’est dite
“scandalisée” par ces pratiques.
Plusieurs associations comme Stop Fisha et Respect Zone ainsi que le signaleur
de confiance Point de Contact ont en outre indiqué à POLITICO être en train de
récolter des contenus signalés par les utilisateurs pour les faire remonter aux
autorités.
Cette nouvelle affaire va étoffer l’enquête déjà ouverte par la section de lutte
contre la cybercriminalité contre la plateforme X. Une procédure déjà élargie en
novembre à des propos antisémites et négationnistes disséminés par Grok.
Eric Bothorel, qui avait obtenu l’ouverture de l’enquête judiciaire contre le
réseau X en février dernier, a également indiqué à POLITICO saisir conjointement
l’Arcom et la Commission européenne.
Sollicité par POLITICO, X n’a pas donné suite au moment de la publication."""


def _stems(words: list[str]) -> list[str]:
    return Stemmer.Stemmer("french").stemWords(words)


def _sentences(text: str) -> list[str]:
    return [text[s:e] for s, e in split_sentences(text)]


# --------------------------------------------------------------------------- fold / nfc


@pytest.mark.parametrize(
    ("raw", "folded"),
    [
        ("L’Ouganda  “déjà”", 'l\'ouganda "deja"'),
        ("« Ça » — œuvre", '" ca " - oeuvre'),
        ("60\u00a0000\u202feuros\u2009nets", "60 000 euros nets"),
        ("‘a’ ‛b` ´c", "'a' 'b' 'c"),
        ("„x“ – y", '"x" - y'),
        ("  ÉCOLE\n\tÉlÈve  ", "ecole eleve"),
        ("deux ans d’emprisonnement", "deux ans d'emprisonnement"),
    ],
)
def test_fold(raw: str, folded: str) -> None:
    assert fold(raw) == folded


def test_fold_matches_straight_and_typographic_evidence() -> None:
    assert fold("puni de deux ans d'emprisonnement") in fold(ONE_SENTENCE)


def test_nfc_composes() -> None:
    decomposed = unicodedata.normalize("NFD", "é")
    assert len(decomposed) == 2
    assert nfc(decomposed) == "é"


# --------------------------------------------------------------------------- unwrap


def test_unwrap_article_1_keeps_words_and_matches_corpus_file() -> None:
    unwrapped = unwrap(WRAPPED_ARTICLE_1)
    assert unwrapped.split() == WRAPPED_ARTICLE_1.split()
    paragraphs = unwrapped.split("\n\n")
    assert len(paragraphs) == 11
    assert all("\n" not in p for p in paragraphs)
    assert paragraphs[2] == ONE_SENTENCE
    corpus_text = next(
        a.text for a in load_corpus(CORPUS).articles if a.id == "grok-deepfakes-enquete"
    )
    assert unwrapped == corpus_text


def test_unwrap_real_seed_keeps_every_word() -> None:
    seed = SEED.read_text(encoding="utf-8")
    assert wrap_width(seed) == 80
    unwrapped = unwrap(seed)
    assert unwrapped.split() == seed.split()
    paragraphs = unwrapped.split("\n\n")
    assert paragraphs[0].startswith("PARIS — La justice française")
    assert paragraphs[0].endswith("a indiqué le parquet de Paris à POLITICO.")
    # 11 + 4 + 6 paragraphs; the "Tag - …" line glues to the next article's start.
    assert len(paragraphs) == 21


def test_unwrap_wrapped_text_joins_and_splits() -> None:
    text = (
        "Le parquet a été saisi ce 2\njanvier par deux députés.\n"
        "Ils ont confirmé avoir fait\ndes signalements à la justice."
    )
    assert unwrap(text) == (
        "Le parquet a été saisi ce 2 janvier par deux députés.\n\n"
        "Ils ont confirmé avoir fait des signalements à la justice."
    )


def test_unwrap_joins_when_next_word_would_not_fit() -> None:
    # "l’effigie d’enfants." ends a sentence but "L’administration" would not have
    # fitted on the line, so the break is a wrap, not a paragraph end.
    lines = [
        "Roland Lescure était interrogé ce matin sur BFM TV après que la direction",
        "générale de la Concurrence, de la Consommation et de la Répression des fraudes",
        "(DGCCRF) a découvert, vendredi 31 octobre, que la plateforme proposait à la",
        "vente des poupées sexuelles à l’effigie d’enfants, selon les informations d’ici.",
        "L’administration avait alors immédiatement saisi le procureur de la République",
        "et l’Arcom.",
        "Un autre paragraphe commence ici.",
    ]
    paragraphs = unwrap("\n".join(lines)).split("\n\n")
    assert len(paragraphs) == 2
    assert paragraphs[1] == "Un autre paragraphe commence ici."


@pytest.mark.parametrize(
    "text",
    [
        "Premier paragraphe assez long pour ne pas être coupé. " * 4
        + "\nDeuxième paragraphe, lui aussi sur une seule ligne et long. " * 1,
        "Une ligne.\nUne autre ligne.",
        "Titre\n\nUn paragraphe.\n\n\nUn autre paragraphe.",
    ],
)
def test_unwrap_keeps_unwrapped_lines_as_paragraphs(text: str) -> None:
    expected = [line.strip() for line in text.split("\n") if line.strip()]
    assert unwrap(text).split("\n\n") == expected


def test_unwrap_strips_trailing_spaces_and_crlf() -> None:
    assert unwrap("Un.  \r\n\r\nDeux.\t\r\n") == "Un.\n\nDeux."


def test_wrap_width_none_for_long_lines() -> None:
    assert wrap_width("x " * 300 + "\n" + "y " * 250 + "\n" + "z " * 400) is None


# --------------------------------------------------------------------------- sentences


def test_long_quoted_sentence_is_one_sentence() -> None:
    assert split_sentences(ONE_SENTENCE) == [(0, len(ONE_SENTENCE))]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "M. Dupont est venu. “Il pleut.” Puis il est parti !",
            ["M. Dupont est venu.", "“Il pleut.”", "Puis il est parti !"],
        ),
        (
            "Mme. Martin et le Dr. House parlent. Ensuite ?",
            ["Mme. Martin et le Dr. House parlent.", "Ensuite ?"],
        ),
        (
            "Voir l’art. 40 et la p. 12, p. ex. le cas 3. Fin.",
            ["Voir l’art. 40 et la p. 12, p. ex. le cas 3.", "Fin."],
        ),
        ("Selon J. Dupont, il a 3.5 ans. Oui.", ["Selon J. Dupont, il a 3.5 ans.", "Oui."]),
        (
            "César meurt en 44 av. J.-C. à Rome. Puis vient Auguste.",
            ["César meurt en 44 av. J.-C. à Rome.", "Puis vient Auguste."],
        ),
        (
            "La plateforme démontre (…) que tout va bien. Il attend... et rien. Et alors…",
            ["La plateforme démontre (…) que tout va bien.", "Il attend... et rien.", "Et alors…"],
        ),
        (
            "Contre la plateforme X. Une procédure déjà élargie.",
            ["Contre la plateforme X.", "Une procédure déjà élargie."],
        ),
        (
            "Il a dit « c’est fini. » Puis il est parti. « Pourquoi ? » demande-t-elle.",
            ["Il a dit « c’est fini. »", "Puis il est parti.", "« Pourquoi ? » demande-t-elle."],
        ),
        (
            "Un titre sans point\n\nLe texte suit.\n\nUn autre paragraphe",
            ["Un titre sans point", "Le texte suit.", "Un autre paragraphe"],
        ),
        ("Il y a 60 000 euros, etc. Voilà.", ["Il y a 60 000 euros, etc.", "Voilà."]),
        ("Quoi ?! Vraiment…  Oui.", ["Quoi ?!", "Vraiment…", "Oui."]),
        ("Il règne (r. 1590–1613). Il meurt.", ["Il règne (r. 1590–1613).", "Il meurt."]),
        ("Selon É. Zola, non. Bon.", ["Selon É. Zola, non.", "Bon."]),
    ],
)
def test_split_sentences(text: str, expected: list[str]) -> None:
    assert _sentences(text) == expected


@pytest.mark.parametrize("padding", ["", "  ", "\n\n", " \n "])
def test_spans_exclude_whitespace_and_index_the_text(padding: str) -> None:
    text = f"{padding}Première phrase.   Deuxième phrase !{padding}"
    spans = split_sentences(text)
    assert [text[s:e] for s, e in spans] == ["Première phrase.", "Deuxième phrase !"]
    for s, e in spans:
        assert not text[s].isspace() and not text[e - 1].isspace()


def test_spans_on_corpus_articles_cover_all_words() -> None:
    for article in load_corpus(CORPUS).articles:
        spans = split_sentences(article.text)
        assert spans == sorted(spans)
        assert all(s < e for s, e in spans)
        assert all(e1 <= s2 for (_, e1), (s2, _) in zip(spans, spans[1:], strict=False))
        joined = " ".join(article.text[s:e] for s, e in spans)
        assert joined.split() == article.text.split()
        assert all(article.text[s:e].strip() == article.text[s:e] for s, e in spans)


def test_article_1_sentence_count() -> None:
    text = next(a.text for a in load_corpus(CORPUS).articles if a.id == "grok-deepfakes-enquete")
    sentences = _sentences(text)
    assert ONE_SENTENCE in sentences
    assert (
        "Une procédure déjà élargie en novembre à des propos antisémites et négationnistes "
        "disséminés par Grok." in sentences
    )
    # 11 paragraphs, two of which hold two sentences.
    assert len(sentences) == 13


def test_empty_text_has_no_sentence() -> None:
    assert split_sentences("") == []
    assert split_sentences("  \n\n ") == []


# --------------------------------------------------------------------------- BM25 tokens


def test_bm25_question_tokens() -> None:
    assert bm25_tokens("Quelle est la peine prévue ?") == _stems(["peine", "prevue"])


@pytest.mark.parametrize(
    ("a", "b"),
    [("prévue", "prévu"), ("emprisonnement", "EMPRISONNEMENT"), ("l’enquête", "enquête")],
)
def test_bm25_same_stem(a: str, b: str) -> None:
    assert bm25_tokens(a) == bm25_tokens(b)
    assert len(bm25_tokens(a)) == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("l’enquête d'amende", ["enquete", "amende"]),
        ("jusqu’à lorsqu'il puisqu’elle qu’il n’a s’est", []),
        ("Combien, comment, pourquoi, quand, quoi, quel, quels ?", []),
        ("la peine et la procédure", ["peine", "procedure"]),
    ],
)
def test_bm25_elisions_and_stop_words(text: str, expected: list[str]) -> None:
    assert bm25_tokens(text) == _stems(expected)


def test_bm25_keeps_numbers_and_single_letters() -> None:
    tokens = bm25_tokens("l’article 226-8-1 sur X et 60 000 euros")
    assert "226-8-1" in tokens
    assert "x" in tokens
    assert "60" in tokens and "000" in tokens


def test_stop_words_are_function_words_only() -> None:
    assert {"le", "la", "de", "a", "ou", "qui", "quelle", "ete"} <= STOP_WORDS
    assert not {"peine", "prevue", "amende", "x", "grok"} & STOP_WORDS
    assert 120 <= len(STOP_WORDS) <= 260


def test_bm25_tokenize_batch_matches_single() -> None:
    texts = ["La peine.", "Des amendes", ""]
    assert bm25_tokenize(texts) == [bm25_tokens(t) for t in texts]
    assert bm25_tokenize(texts)[2] == []
