"""Tests of qa.eval.metrics: the French answer normaliser, answer scores, ranking scores,
refusal accounting and percentiles."""

from __future__ import annotations

import pytest

from qa.eval.metrics import (
    Figure,
    answer_support,
    citation_precision,
    contains_answer,
    exact_match,
    first_relevant_rank,
    mean,
    mean_reciprocal_rank,
    normalize_answer,
    percentile,
    recall_at_k,
    refusal_rates,
    share,
    strip_markers,
    token_f1,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("L'Ouganda", "ouganda"),
        ("l’Arcom", "arcom"),
        ("« la Commission européenne »", "commission europeenne"),
        ("Éric BOTHOREL.", "eric bothorel"),
        ("deux ans d’emprisonnement et 60 000 euros d'amende",
         "deux ans emprisonnement et 60 000 euros amende"),
        ("Œuvre — « ça » !", "oeuvre ca"),
        ("aujourd'hui", "aujourd hui"),  # not an elided article
        ("article 226-8-1", "article 226 8 1"),
        ("Les Ulis", "ulis"),
    ],
)
def test_normalize_answer_french(text, expected):
    assert normalize_answer(text) == expected


def test_exact_match_ignores_articles_case_accents_and_quotes():
    assert exact_match("Ouganda", ["L'Ouganda"]) == 1.0
    assert exact_match("L’ARCOM", ["l'Arcom"]) == 1.0
    assert exact_match("« Éric Bothorel »", ["Eric Bothorel"]) == 1.0
    assert exact_match("l'Arcom et la CNIL", ["l'Arcom"]) == 0.0
    assert exact_match("Arcom", []) == 0.0


def test_exact_match_takes_the_best_gold():
    assert exact_match("BFM TV", ["France Info", "bfm-tv"]) == 1.0


def test_token_f1_hand_made():
    # prediction "deux ans prison" vs gold "deux ans": common 2, P=2/3, R=1 → F1=0.8
    assert token_f1("deux ans de prison", ["deux ans"]) == pytest.approx(0.8)
    assert token_f1("Wish", ["le site Wish"]) == pytest.approx(2 * 1 * 0.5 / 1.5)
    assert token_f1("rien à voir", ["Wish"]) == 0.0
    assert token_f1("", ["Wish"]) == 0.0
    # The best gold counts, not the first.
    assert token_f1("48 heures", ["48 prochaines heures", "48 heures"]) == 1.0


def test_token_f1_counts_repeated_tokens_once_each():
    # prediction "paris paris" vs gold "paris": common 1, P=1/2, R=1 → 2/3
    assert token_f1("Paris, Paris", ["Paris"]) == pytest.approx(2 / 3)


def test_contains_answer_whole_words_after_normalisation():
    sentence = "Le site de vente en ligne Wish avait été déréférencé en 2021. [1]"
    assert contains_answer(strip_markers(sentence), ["wish"])
    assert contains_answer("Eric Bothorel a saisi l’Arcom.", ["l'Arcom"])
    assert not contains_answer("Il a 20 ans.", ["an"])
    assert not contains_answer("Rien.", ["Wish"])
    assert not contains_answer("Tout.", ["le"])  # a gold of only an article matches nothing


def test_strip_markers():
    assert strip_markers("Il pleut. [1] Il vente. [2]") == "Il pleut. Il vente."
    assert strip_markers("Sans marqueur.") == "Sans marqueur."


def test_first_relevant_rank_and_recall_at_k():
    assert first_relevant_rank([False, False, True, True]) == 3
    assert first_relevant_rank([False]) is None
    ranks = [1, 3, None, 10, 11]
    assert recall_at_k(ranks, 1) == Figure(0.2, 5)
    assert recall_at_k(ranks, 5) == Figure(0.4, 5)
    assert recall_at_k(ranks, 10) == Figure(0.6, 5)
    assert recall_at_k([], 10) == Figure(None, 0)


def test_mean_reciprocal_rank():
    figure = mean_reciprocal_rank([1, 2, None, 4])
    assert figure.n == 4
    assert figure.value == pytest.approx((1 + 0.5 + 0 + 0.25) / 4)
    assert mean_reciprocal_rank([]) == Figure(None, 0)


def test_mean_and_share_report_their_count():
    assert mean([1.0, 0.0, 0.5]) == Figure(0.5, 3)
    assert share([True, False, False, True]) == Figure(0.5, 4)
    assert share([]) == Figure(None, 0)


def test_citation_precision_counts_citations_not_answers():
    figure = citation_precision([(True, False), (True,), ()])
    assert figure == Figure(pytest.approx(2 / 3), 3)


def test_answer_support_counts_answers_with_one_supporting_citation():
    assert answer_support([(False, True), (False,), ()]) == Figure(pytest.approx(1 / 3), 3)


def test_refusal_accounting():
    # (answerable, answered)
    outcomes = [(True, True), (True, False), (True, True), (True, True),
                (False, False), (False, True)]
    rates = refusal_rates(outcomes)
    assert rates["false_refusal"] == Figure(0.25, 4)
    assert rates["refusal_correct"] == Figure(0.5, 2)


def test_refusal_accounting_without_unanswerable_questions_is_unknown():
    rates = refusal_rates([(True, True)])
    assert rates["refusal_correct"] == Figure(None, 0)
    assert rates["false_refusal"] == Figure(0.0, 1)


def test_percentile_interpolates_like_numpy():
    values = [10.0, 1.0, 4.0, 3.0, 2.0]  # sorted: 1 2 3 4 10
    assert percentile(values, 50) == 3.0
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 10.0
    assert percentile(values, 95) == pytest.approx(4 + 0.8 * 6)  # position 3.8
    assert percentile([7.0], 95) == 7.0
    assert percentile([], 50) is None
    with pytest.raises(ValueError):
        percentile(values, 101)
