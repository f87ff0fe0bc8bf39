"""The reader on PIAF dev or test: `python -m qa.reader.evaluate --split dev`.

For each question of the split, the reader reads BM25's top `depth` paragraphs of
all of PIAF plus the gold paragraph. `predict` returns one `Prediction` per
question; `figures` turns them into the figures that need no answer normalisation:
  - recall@1 of BM25 and of the reader's relevance over the same top-`depth` list
    (relevant = the gold paragraph), and at depth 5;
  - no-answer calibration: gold paragraphs are answerable, BM25's best paragraph
    without the answer is not; the threshold on the no-answer probability that keeps
    false refusals ≤ 15 % (or the one given), the refusal rates there, and the AUC;
  - the share of the split's written unanswerable questions
    (`evals/piaf/piaf-unanswerable-fr.jsonl`), each read over its own paragraph,
    refused at that threshold, and their AUC against the gold paragraphs.
Span EM and F1 need the benchmark's French answer normalisation, `qa.eval.metrics`,
a later stage than `qa.reader`: this module does not score texts, it writes the
predicted span texts (`gold_span`: read in the gold paragraph; `top_span`: in the
reader's top passage) with the gold answers to `--out`, for `qa.eval` to score.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import click
import numpy as np
from tqdm import tqdm

from qa.config import READER_PRECISIONS, Settings
from qa.reader.data import (
    Paragraph,
    Question,
    Unanswerable,
    candidates,
    load_piaf,
    load_unanswerable,
    questions_of,
    unanswerable_of,
)
from qa.reader.inference import Reader

MAX_FALSE_REFUSAL = 0.15


@dataclass(frozen=True)
class Prediction:
    """What the reader did with one question."""

    id: str
    question: str
    golds: list[str]
    gold_span: str  # the span read in the gold paragraph
    top_span: str  # the span read in the passage the reader ranks first
    bm25_rank: int | None  # 1-based rank of the gold paragraph in BM25's list
    reader_rank: int | None  # ... after reranking that list by relevance
    reader_rank_at_5: int | None  # ... reranking only BM25's top 5
    no_answer_gold: float
    no_answer_negative: float | None  # on BM25's best paragraph without the answer


def _rank(order: Sequence[int], paragraphs: Sequence[Paragraph], gold: int) -> int | None:
    return next((r for r, i in enumerate(order, 1) if paragraphs[i].number == gold), None)


def predict(reader: Reader, questions: Sequence[Question], pool: Sequence[Paragraph],
            depth: int = 8, progress: bool = True) -> list[Prediction]:
    """Read each question's BM25 top `depth` of `pool` and its gold paragraph."""
    found = candidates(questions, pool, depth)
    predictions = []
    for q in tqdm(questions, desc="évaluation", disable=not progress, file=sys.stderr):
        listed = found[q.id]
        passages = listed + ([q.paragraph] if q.paragraph not in listed else [])
        readings = reader.read(q.text, [p.text for p in passages])
        gold = readings[passages.index(q.paragraph)]
        by_relevance = sorted(range(len(listed)), key=lambda i: -readings[i].relevance)
        top5 = sorted(range(min(5, len(listed))), key=lambda i: -readings[i].relevance)
        top = readings[by_relevance[0]] if listed else gold
        top_text = passages[by_relevance[0]].text if listed else q.paragraph.text
        negative = next((readings[i].no_answer for i, p in enumerate(listed)
                         if p.number != q.paragraph.number and not q.answered_by(p.text)), None)
        predictions.append(Prediction(
            q.id, q.text, [text for text, _ in q.answers],
            q.paragraph.text[gold.start : gold.end], top_text[top.start : top.end],
            _rank(range(len(listed)), listed, q.paragraph.number),
            _rank(by_relevance, listed, q.paragraph.number),
            _rank(top5, listed, q.paragraph.number),
            gold.no_answer, negative))
    return predictions


def no_answer_of_written(reader: Reader, written: Sequence[Unanswerable],
                         progress: bool = True) -> list[float]:
    """The no-answer probability of each written question over its own paragraph."""
    return [reader.read(u.text, [u.paragraph.text])[0].no_answer
            for u in tqdm(written, desc="sans réponse", disable=not progress, file=sys.stderr)]


def auc(positives: Sequence[float], negatives: Sequence[float]) -> float | None:
    """P(a negative scores above a positive), ties counting half (Mann-Whitney)."""
    if not positives or not negatives:
        return None
    pos, neg = np.asarray(positives)[:, None], np.asarray(negatives)[None, :]
    return float(((neg > pos).sum() + 0.5 * (neg == pos).sum()) / (pos.size * neg.size))


def refusal_threshold(no_answer_gold: Sequence[float],
                      max_false_refusal: float = MAX_FALSE_REFUSAL) -> float:
    """The lowest threshold t such that refusing when no_answer > t refuses at most
    `max_false_refusal` of the answerable (gold) pairs."""
    ordered = sorted(no_answer_gold, reverse=True)
    return float(ordered[min(int(max_false_refusal * len(ordered)), len(ordered) - 1)])


def _share(flags: Sequence[bool]) -> float | None:
    return sum(flags) / len(flags) if flags else None


def figures(predictions: Sequence[Prediction], threshold: float | None = None,
            written: Sequence[float] = ()) -> dict:
    """Ranking and refusal figures (the threshold is computed here when not given);
    `written`: the no-answer probabilities of the written unanswerable questions."""
    gold = [p.no_answer_gold for p in predictions]
    negative = [p.no_answer_negative for p in predictions if p.no_answer_negative is not None]
    chosen = refusal_threshold(gold) if threshold is None else threshold
    return {
        "questions": len(predictions),
        "bm25_recall@1": _share([p.bm25_rank == 1 for p in predictions]),
        "reader_recall@1": _share([p.reader_rank == 1 for p in predictions]),
        "bm25_recall@5": _share([p.bm25_rank is not None and p.bm25_rank <= 5
                                 for p in predictions]),
        "reader_recall@1_of_top5": _share([p.reader_rank_at_5 == 1 for p in predictions]),
        "bm25_recall@depth": _share([p.bm25_rank is not None for p in predictions]),
        "no_answer_threshold": chosen,
        "threshold_from": "this split" if threshold is None else "given",
        "false_refusal": _share([g > chosen for g in gold]),
        "true_refusal": _share([n > chosen for n in negative]),
        "no_answer_auc": auc(gold, negative),
        "negatives": len(negative),
        "written_refusal": _share([w > chosen for w in written]),
        "written_auc": auc(gold, written),
        "written": len(written),
    }


def latency(reader: Reader, paragraphs: Sequence[Paragraph], questions: Sequence[Question],
            sizes: Sequence[int] = (5, 8), repeats: int = 20) -> dict:
    """Seconds per `read` call on `n` passages of about 200 to 500 tokens (PIAF
    paragraphs of one article joined until they reach 200 tokens), p50 and p90."""
    tokens = reader.tokenizer
    passages, current = [], ""
    for i, paragraph in enumerate(paragraphs):
        current = f"{current}\n\n{paragraph.text}".strip()
        ids = tokens(current, add_special_tokens=False, return_offsets_mapping=True)
        n = len(ids["input_ids"])
        last = i + 1 == len(paragraphs) or paragraphs[i + 1].title != paragraph.title
        if n >= 200 or last:
            if n >= 100:
                passages.append(current[: ids["offset_mapping"][min(n, 500) - 1][1]])
            current = ""
    result = {}
    for size in sizes:
        times = []
        for r in range(repeats):
            chosen = [passages[(r * size + j) % len(passages)] for j in range(size)]
            began = time.perf_counter()
            reader.read(questions[r % len(questions)].text, chosen)
            times.append(time.perf_counter() - began)
        times.sort()
        result[f"{size}_passages"] = {"p50_s": statistics.median(times),
                                      "p90_s": times[int(0.9 * (len(times) - 1))],
                                      "repeats": repeats}
    return result


@click.command()
@click.option("--split", type=click.Choice(["dev", "test"]), default="dev", show_default=True)
@click.option("--weights", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Fichier de poids (défaut : qa/reader/weights/reader.safetensors).")
@click.option("--depth", type=int, default=8, show_default=True,
              help="Paragraphes BM25 lus par question.")
@click.option("--threshold", type=float, default=None,
              help="Seuil de non-réponse à appliquer (défaut : calculé sur ce split).")
@click.option("--limit", type=int, default=None, help="N premières questions.")
@click.option("--latency", "measure_latency", is_flag=True,
              help="Mesure aussi la latence de read() sur 5 et 8 passages.")
@click.option("--precision", type=click.Choice(READER_PRECISIONS), default="fp32",
              show_default=True,
              help="Inférence en fp32 ou bf16 (autocast).")
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Fichier JSON des prédictions et des chiffres.")
def main(split, weights, depth, threshold, limit, measure_latency, precision, out):
    """Évalue le lecteur sur PIAF (dev ou test)."""
    reader = Reader.load(Settings.from_env().cache_dir, weights, precision)
    paragraphs, all_questions = load_piaf()
    questions = questions_of(all_questions, split)[:limit]
    began = time.time()
    predictions = predict(reader, questions, paragraphs, depth)
    written = no_answer_of_written(reader, unanswerable_of(load_unanswerable(paragraphs),
                                                           split)[:limit])
    result = {"split": split, "depth": depth, "precision": precision,
              "seconds": round(time.time() - began, 1),
              **figures(predictions, threshold, written)}
    if measure_latency:
        result["latency"] = latency(reader, paragraphs, questions)
    click.echo(json.dumps(result, indent=1, ensure_ascii=False))
    if out:
        out.write_text(json.dumps({"figures": result,
                                   "predictions": [asdict(p) for p in predictions]},
                                  ensure_ascii=False, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
