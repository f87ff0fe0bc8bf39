"""Choosing how the reader answerer reranks: `python -m benchmarks.tune_rerank`.

The reader answerer orders the passages it read by a `Fusion` of the reader's
relevance, its span score, its no-answer logit and the retrieval rank, down to a
depth. This script reads the top `MAX_DEPTH` hybrid hits of every question of PIAF
v1.0's dev articles once (the reader's split, never trained on), with refusal off,
then scores every fusion and depth of the grid on those readings: the share of
questions whose first passage holds the gold answer (the answer passage @1 of
`qa bench`), the share whose answer text holds it, and the short answer's F1. It picks
the highest answer passage @1 (ties: the highest gold answer in the answer, then the
smaller depth, then the weights nearest the old rule `relevance - log(1 + rank)`).

Every passage of the depth is read here; the answerer reads the first two alone when
one of them is sure (`QA_READER_SURE`), so `qa bench` may differ a little. The
threshold is chosen afterwards, with this fusion: benchmarks/calibrate_reader.py.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

import click
from tqdm import tqdm

from benchmarks.calibrate_reader import PIAF
from qa.answering.assistant import Assistant, default_answerer
from qa.answering.reader import Candidate, Fusion, ReaderAnswerer, cited
from qa.config import Settings
from qa.eval import metrics as m
from qa.eval.datasets import Question, in_split, load_dataset
from qa.eval.gold import is_gold_chunk, map_spans, retrieval_eligible
from qa.eval.run import BenchOptions, prepare

MAX_DEPTH = 8
DEPTHS = (4, 5, 6, 8)
RANK_WEIGHTS = (0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0)
SPAN_WEIGHTS = (0.0, 0.05, 0.1, 0.2, 0.4)
NO_ANSWER_WEIGHTS = (0.0, 0.25, 0.5, 1.0)
OLD_RULE = Fusion(1.0, 0.0, 0.0)


class Read(NamedTuple):
    """What one candidate passage would give as the answer."""

    gold: bool  # the passage holds a gold answer span
    contains: bool  # the answer text (short answer and quotes) holds a gold answer
    f1: float


def read_dev(assistant: Assistant, questions: list[Question]):
    """(question, candidates, reads) per dev question: the reader's candidates for
    the top MAX_DEPTH hits and what each would answer."""
    answerer = assistant.answerer
    assert isinstance(answerer, ReaderAnswerer)
    rows = []
    for q in tqdm(questions, desc="lecture", unit="q"):
        vector = assistant.embedder.encode([q.question], "query")[0]
        hits = assistant.search(q.question, k=MAX_DEPTH, query_vector=vector)
        index = assistant.index.focus(hits)
        candidates = answerer.read(index, q.question, hits, vector)
        rows.append((q, candidates, [outcome(index, q, c) for c in candidates]))
    return rows


def outcome(index, q: Question, c: Candidate) -> Read:
    start, end = c.offset + c.reading.start, c.offset + c.reading.end
    draft = cited(index, c.hit, start, end, 1.0, ()) if start < end else None
    text = m.strip_markers(draft.text) if draft and draft.answered else ""
    short = c.hit.article.text[start:end]
    return Read(is_gold_chunk(q, c.hit.chunk), bool(text) and m.contains_answer(text, q.answers),
                m.token_f1(short, q.answers))


def figures(rows, fusion: Fusion, depth: int) -> dict:
    """Answer passage @1 (eligible questions), gold answer in the answer and F1 (all),
    with the first passage of `fusion` over the first `depth` candidates."""
    first = []
    for q, candidates, reads in rows:
        kept = candidates[:depth]
        best = fusion.ranked(kept)[0] if kept else None
        first.append((q, reads[kept.index(best)] if best else Read(False, False, 0.0)))
    eligible = [r for q, r in first if retrieval_eligible(q)]
    return {"passage_at_1": sum(r.gold for r in eligible) / max(len(eligible), 1),
            "contains": sum(r.contains for _, r in first) / max(len(first), 1),
            "f1": sum(r.f1 for _, r in first) / max(len(first), 1)}


def distance(fusion: Fusion) -> float:
    return (abs(fusion.rank - OLD_RULE.rank) + abs(fusion.span - OLD_RULE.span)
            + abs(fusion.no_answer - OLD_RULE.no_answer))


@click.command()
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Fichier JSON du tableau complet.")
def main(out: Path | None) -> None:
    """Choisit la fusion et la profondeur du reclassement sur PIAF dev."""
    settings = replace(Settings.from_env(), answerer="reader", reader_threshold=1.0,
                       reader_sure=0.0, rerank_depth=MAX_DEPTH)
    piaf = load_dataset(PIAF)
    assistant, _, _ = prepare(piaf, settings, BenchOptions(progress=True))
    assistant = Assistant(settings, assistant.embedder, assistant.index,
                          default_answerer(settings))
    rows = read_dev(assistant, map_spans(in_split(piaf, "dev"), assistant.index.articles))
    table = []
    for depth, rank, span, no_answer in itertools.product(
            DEPTHS, RANK_WEIGHTS, SPAN_WEIGHTS, NO_ANSWER_WEIGHTS):
        fusion = Fusion(rank, span, no_answer)
        table.append({"depth": depth, "fusion": fusion} | figures(rows, fusion, depth))
    table.sort(key=lambda r: (-r["passage_at_1"], -r["contains"], r["depth"],
                              distance(r["fusion"])))
    old = next(r for r in table if r["depth"] == 4 and r["fusion"] == OLD_RULE)
    for r in [old, *table[:10]]:
        f = r["fusion"]
        click.echo(f"profondeur {r['depth']}  rang {f.rank}  span {f.span}  "
                   f"sans-réponse {f.no_answer}  passage@1 {r['passage_at_1']:.3f}  "
                   f"contient {r['contains']:.3f}  F1 {r['f1']:.3f}")
    best = table[0]
    click.echo(f"Retenu : profondeur {best['depth']}, {best['fusion']} "
               f"(la règle d'avant, profondeur 4 : passage@1 {old['passage_at_1']:.3f})")
    if out:
        out.write_text(json.dumps([r | {"fusion": r["fusion"].__dict__} for r in table],
                                  indent=1))


if __name__ == "__main__":
    main()
