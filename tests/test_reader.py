"""The extractive reader: exact character offsets, the split by article, training
that learns, weights that round-trip and refuse another base model, and the
committed weights answering a French question."""

from __future__ import annotations

import json
import random
import re
from dataclasses import replace

import pytest
import torch

from qa.config import Settings
from qa.errors import ModelError
from qa.reader.data import (
    HARD_ANSWERABLE_PATH,
    NEWS_UNANSWERABLE_PATH,
    QuestionSwapper,
    epoch_pairs,
    hard_negatives,
    load_answerable,
    load_piaf,
    load_unanswerable,
    questions_of,
    split_of,
    unanswerable_of,
)
from qa.reader.windows import char_span, encode_windows, token_span, trim_span
from qa.text import bm25_tokens, fold

_CACHE_DIR = Settings.from_env().cache_dir

PASSAGES = [
    "L’entreprise  a été fondée   en 1998 par Jean-Pierre Dupré, à Montréal.",
    "Selon l’Insee, le taux de chômage s’établit à 7,3 % au troisième trimestre.",
    "« Nous n’avons pas d’autre choix », a déclaré la ministre, Élisabeth Borne.",
    "Le Conseil d'État a rendu sa décision le 12 février  2021 (CE, n° 4452).",
]


@pytest.fixture(scope="module")
def base():
    from qa.embeddings.conversion import ensure_converted

    return ensure_converted(_CACHE_DIR)


@pytest.fixture(scope="module")
def tokenizer(base):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(base))


# ------------------------------------------------------------------- offsets


@pytest.mark.parametrize("passage", PASSAGES)
def test_every_word_maps_to_tokens_and_back_exactly(tokenizer, passage):
    import re

    (window,) = encode_windows(tokenizer, ["Qui ?"], [passage], 128, 32)
    for match in re.finditer(r"[\w’'-]+(?:\s+[\w’'-]+)?", passage):
        wanted = trim_span(passage, match.start(), match.end())
        first, last = token_span(window, *wanted)
        assert passage[slice(*char_span(window, passage, first, last))] == \
            passage[slice(*wanted)]


def test_a_chosen_token_span_gives_the_characters_it_covers(tokenizer):
    passage = PASSAGES[0]
    (window,) = encode_windows(tokenizer, ["Qui a fondé l’entreprise ?"], [passage], 128, 32)
    pieces = tokenizer.convert_ids_to_tokens(window.input_ids)
    first = next(i for i, off in enumerate(window.offsets) if off and pieces[i] == "▁Jean")
    last = next(i for i, off in enumerate(window.offsets)
                if off and i > first and pieces[i] == "pré")
    start, end = char_span(window, passage, first, last)
    assert passage[start:end] == "Jean-Pierre Dupré"  # the token's leading space trimmed
    # A token span ending on the comma and starting on the double space's word.
    a = next(i for i, off in enumerate(window.offsets) if off and pieces[i] == "▁a")
    assert passage[slice(*char_span(window, passage, a, a))] == "a"


def test_trimming_keeps_abbreviations_and_balanced_brackets():
    text = "  « vers 50 av. J.-C. », (CE, n° 4452), la fin.  "
    assert text[slice(*trim_span(text, 0, 12))] == "vers 50"
    assert text[slice(*trim_span(text, 2, 22))] == "vers 50 av. J.-C."
    assert text[slice(*trim_span(text, 2, 24))] == "« vers 50 av. J.-C. »"
    assert text[slice(*trim_span(text, 24, 39))] == "(CE, n° 4452)"
    assert text[slice(*trim_span(text, 39, len(text)))] == "la fin"
    assert trim_span(text, 0, 2) == (2, 2)


def test_long_passages_slide_in_overlapping_windows(tokenizer):
    passage = " ".join(PASSAGES * 12)
    windows = encode_windows(tokenizer, ["Quand ?"], [passage], 96, 24)
    assert len(windows) > 3 and {w.passage for w in windows} == {0}
    end = len(passage)
    assert any(w.covers(end - 10, end - 1) for w in windows)
    assert all(w.offsets[w.passage_tokens[0]][0] < w.offsets[w.passage_tokens[1]][1]
               for w in windows)


# ------------------------------------------------------------------- data


def test_the_split_is_by_article_stable_and_about_80_10_10():
    paragraphs, questions = load_piaf()
    titles = sorted({p.title for p in paragraphs})
    counts = {s: sum(split_of(t) == s for t in titles) for s in ("train", "dev", "test")}
    assert counts["train"] > 0.7 * len(titles) and min(counts.values()) > 0.05 * len(titles)
    assert split_of(titles[0]) == split_of(titles[0])
    for q in questions[:200]:
        start, end = q.span
        assert q.paragraph.text[start:end] == q.answers[0][0]


@pytest.fixture(scope="module")
def swapping():
    """300 train questions and a swapper over their paragraphs."""
    _, questions = load_piaf()
    asked = questions_of(questions, "train")[:300]
    pool = list({q.paragraph.number: q.paragraph for q in asked}.values())
    return asked, QuestionSwapper(asked, pool)


def test_a_swapped_question_asks_about_a_word_its_paragraph_lacks(swapping):
    asked, swapper = swapping
    rng = random.Random(0)
    made = [(q, swapped) for q in asked if (swapped := swapper.swap(q, rng))]
    assert len(made) > 0.6 * len(asked)
    for q, swapped in made:
        assert swapped != q.text and len(swapped.split()) == len(q.text.split())
        brought = set(bm25_tokens(swapped)) - set(bm25_tokens(q.text))
        assert not brought & set(bm25_tokens(q.paragraph.text))


def test_a_relation_swap_keeps_the_names_and_replaces_a_noun_after_the_same_determiner(
        swapping):
    asked, swapper = swapping
    rng = random.Random(0)
    made = [(q, swapped) for q in asked
            if (swapped := swapper.swap(q, rng, relation=True))]
    assert len(made) > 0.5 * len(asked)
    for q, swapped in made:
        before, after = q.text.split(), swapped.split()
        changed = [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b]
        assert len(changed) == 1
        old, new = before[changed[0]], after[changed[0]]
        # « l'émission » → « l'armée »: the elided determiner stays.
        (*elided, old), (*kept, new) = re.split("['’]", old), re.split("['’]", new)
        assert elided == kept
        assert not old[0].isupper() and not new[0].isupper()  # names stay
        assert not set(bm25_tokens(new)) & set(bm25_tokens(q.paragraph.text))


def test_written_unanswerable_questions_are_new_and_drawn_over_their_paragraph():
    paragraphs, questions = load_piaf()
    written = load_unanswerable(paragraphs)
    asked = {q.text for q in questions}
    assert not asked & {u.text for u in written}
    kinds = {u.kind for u in written}
    assert kinds == {"relation", "swap", "type", "cause", "negation"}
    train = unanswerable_of(written, "train")
    assert len(train) > 0.7 * len(written) and all(
        split_of(u.paragraph.title) == "train" for u in train)
    on = {u.paragraph.number for u in train}
    asked_train = [q for q in questions_of(questions, "train") if q.paragraph.number in on]
    pairs = epoch_pairs(asked_train[:50], {}, random.Random(0), paragraphs, written=1.0,
                        unanswerable=train)
    by_text = {u.text: u.paragraph.number for u in train}
    for pair in pairs:
        assert pair.negative == pair.question.paragraph
        assert by_text[pair.negative_question] == pair.question.paragraph.number


def test_written_answerable_questions_are_new_spans_of_train_paragraphs():
    paragraphs, questions = load_piaf()
    written = load_answerable(paragraphs)
    assert len(written) > 2000 and len({q.id for q in written}) == len(written)
    assert all(split_of(q.paragraph.title) == "train" for q in written)
    asked = {fold(q.text).lower() for q in questions}
    assert not asked & {fold(q.text).lower() for q in written}
    for q in written:
        start, end = q.span
        assert q.paragraph.text[start:end] == q.answers[0][0] and q.text.endswith("?")
    # Four per paragraph: every train paragraph gets more questions than PIAF's five.
    assert len({q.paragraph.number for q in written}) > 0.95 * len(
        {q.paragraph.number for q in questions_of(questions, "train")})


def test_second_rounds_are_new_questions_over_train_paragraphs_only():
    paragraphs, questions = load_piaf()
    news = load_unanswerable(paragraphs, NEWS_UNANSWERABLE_PATH)
    hard = load_answerable(paragraphs, HARD_ANSWERABLE_PATH)
    assert {u.kind for u in news} == {"role", "agent", "amount", "outcome"}
    assert all(split_of(x.paragraph.title) == "train" for x in [*news, *hard])
    earlier = [q.text for q in questions] + [u.text for u in load_unanswerable(paragraphs)] + [
        q.text for q in load_answerable(paragraphs)]
    new = [fold(t).lower() for t in [*(u.text for u in news), *(q.text for q in hard)]]
    assert len(set(new)) == len(new) and not set(new) & {fold(t).lower() for t in earlier}
    for q in hard:
        start, end = q.span
        assert q.paragraph.text[start:end] == q.answers[0][0] and q.text.endswith("?")


def test_retrieval_negatives_are_a_second_paragraph_without_the_answer():
    paragraphs, questions = load_piaf()
    asked = questions_of(questions, "train")[:60]
    pool = [p for p in paragraphs if split_of(p.title) == "train"]
    negatives = hard_negatives(asked, pool)
    pairs = epoch_pairs(asked, negatives, random.Random(0), pool, near_misses=0.5,
                        retrieved=True)
    assert {pair.question.id for pair in pairs} == {q.id for q in asked}
    for pair in pairs:
        q, second = pair.question, pair.retrieved
        assert second is not None and second != q.paragraph and not q.answered_by(second.text)
        if len(negatives[q.id]) > 1:
            assert second in negatives[q.id] and second != pair.negative
    assert all(pair.retrieved is None for pair in epoch_pairs(asked, negatives,
                                                              random.Random(0), pool))


# ------------------------------------------------------------------- training


@pytest.fixture(scope="module")
def tiny_training(tmp_path_factory):
    from qa.reader.train import train

    out = tmp_path_factory.mktemp("reader")
    log = train("train", out, epochs=20, max_length=64, stride=16, lr=3e-3, rank=4, seed=1,
                limit=16, max_steps=12, log_every=2, cache_dir=_CACHE_DIR, progress=False)
    return out, log


def test_training_on_a_tiny_subset_lowers_the_loss(tiny_training):
    out, log = tiny_training
    losses = [entry["loss"] for entry in log["entries"]]
    assert len(losses) >= 5
    assert sum(losses[-2:]) / 2 < sum(losses[:2]) / 2
    assert json.loads((out / "train-log.json").read_text())["total_steps"] == 12


@pytest.mark.parametrize("use", ["rank", "refuse"])
def test_retrieval_negatives_add_a_third_window_to_the_ranking(tmp_path, use):
    from qa.reader.train import train

    log = train("train", tmp_path, epochs=1, max_length=64, stride=16, lr=3e-3, rank=4,
                seed=1, limit=16, max_steps=1, log_every=1, cache_dir=_CACHE_DIR,
                progress=False, retrieval_negatives=use)
    assert log["args"]["retrieval_negatives"] == use
    # An untrained relevance head spreads the softmax over the three windows
    # (ln 3 ≈ 1.10; two windows would give ln 2 ≈ 0.69).
    assert log["entries"][0]["relevance"] > 0.9


def test_rank_only_negatives_stay_out_of_the_no_answer_loss():
    from qa.reader.train import loss_of
    from qa.reader.windows import Window

    n = 2
    window = Window(passage=0, input_ids=[0, 5, 2], offsets=[None, (0, 1), None])
    batch = [(window, (1, 1), window, window)] * n

    def stand_in(input_ids, attention_mask):
        rows, width = input_ids.shape
        # Gold windows: "answer here"; first negatives: "no answer"; the third
        # windows wrongly "answer here", which only the no-answer loss can punish.
        no_answer = torch.tensor([-9.0] * n + [9.0] * n + [-9.0] * n)
        return (torch.zeros(rows, width), torch.zeros(rows, width), torch.zeros(rows),
                no_answer)

    _, all_three = loss_of(stand_in, batch, pad_id=1, bf16=False)
    _, first_two = loss_of(stand_in, batch, pad_id=1, bf16=False, refused_columns=2)
    assert all_three["no_answer"] > 2.0
    assert first_two["no_answer"] < 0.01
    assert all_three["relevance"] == pytest.approx(first_two["relevance"])


def test_saved_weights_round_trip_through_the_merge(base, tmp_path):
    from qa.reader.model import ReaderConfig, load_model, save_weights, trainable_model

    config = ReaderConfig(base_fingerprint="x", max_length=64, stride=16, rank=4, alpha=8)
    from qa.reader.model import base_fingerprint

    config = replace(config, base_fingerprint=base_fingerprint(base))
    torch.manual_seed(0)
    model, tokenizer = trainable_model(base, config)
    with torch.no_grad():  # non-zero LoRA B, on the fp16 grid the file stores
        for param in model.parameters():
            if param.requires_grad:
                param.copy_((param + 0.02 * torch.randn_like(param)).half().float())
    path = save_weights(model, config, tmp_path / "reader.safetensors")
    assert path.stat().st_size < 12_000_000
    loaded, _, read_back = load_model(base, path)
    assert read_back.rank == 4 and read_back.max_length == 64
    inputs = tokenizer(["query: Qui ?"], [PASSAGES[0]], return_tensors="pt")
    model.eval()
    with torch.inference_mode():
        expected = model(inputs["input_ids"], inputs["attention_mask"])
        got = loaded(inputs["input_ids"], inputs["attention_mask"])
    for a, b in zip(expected, got, strict=True):
        assert torch.allclose(a, b, atol=1e-3), (a - b).abs().max()
    assert not any("lora" in name for name, _ in loaded.named_parameters())


def test_weights_of_another_base_model_are_refused(base, tiny_training, tmp_path):
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from qa.reader.model import load_model

    source = tiny_training[0] / "reader.safetensors"
    with safe_open(str(source), framework="pt") as fh:
        metadata = fh.metadata()
    config = json.loads(metadata["qa_reader"])
    config["base_fingerprint"] = "sha256:un-autre-modele"
    forged = tmp_path / "reader.safetensors"
    save_file(load_file(str(source)), str(forged), metadata={"qa_reader": json.dumps(config)})
    with pytest.raises(ModelError, match="entraînés sur un autre modèle de base"):
        load_model(base, forged)
    with pytest.raises(ModelError, match="introuvables"):
        load_model(base, tmp_path / "absent.safetensors")


# ------------------------------------------------------------------- committed weights


def test_the_committed_weights_answer_a_french_question():
    from qa.reader import Reader
    from qa.reader.model import DEFAULT_WEIGHTS

    assert DEFAULT_WEIGHTS.is_file() and DEFAULT_WEIGHTS.stat().st_size < 12_000_000
    reader = Reader.load(_CACHE_DIR)
    passages = [
        "La tour Eiffel est une tour de fer puddlé de 330 mètres de hauteur située à Paris. "
        "Construite par Gustave Eiffel et ses collaborateurs pour l’Exposition universelle "
        "de 1889, elle est devenue le symbole de la capitale française.",
        "Le Rhône prend sa source en Suisse, dans le glacier du Rhône, et se jette dans la "
        "mer Méditerranée.",
    ]
    readings = reader.read("En quelle année la tour Eiffel a-t-elle été construite ?", passages)
    assert len(readings) == 2
    answer = passages[0][readings[0].start : readings[0].end]
    assert "1889" in answer and answer == answer.strip()
    assert readings[0].relevance > readings[1].relevance
    assert readings[0].no_answer < readings[1].no_answer
    assert 0 <= readings[1].no_answer <= 1
