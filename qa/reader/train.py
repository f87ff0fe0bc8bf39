"""Training the reader on PIAF: `python -m qa.reader.train --split train --out DIR`.

Each step takes 8 questions, each with two windows: the window of its gold
paragraph that holds the answer, and a window of a negative redrawn every epoch:
its near miss (the gold paragraph without the answer's sentences) for a share
`--near-misses` of the questions, its swapped question (a key word replaced, over the
gold paragraph) for a share `--swaps`, its relation swap (a noun replaced, the names
kept) for `--relation-swaps`, a question written over its paragraph that the paragraph
does not answer (`evals/piaf/piaf-unanswerable-fr.jsonl`) for `--written`, else one
of its BM25 hard negatives. With `--retrieval-negatives rank|refuse` every question
also gets a third window, of another of its BM25 hard negatives, in the relevance loss
(and, with `refuse`, in the no-answer loss). The questions are PIAF's and,
with `--written-answerable`, those written over the same articles' paragraphs
(`evals/piaf/piaf-answerable-fr.jsonl`). The loss is the sum of
  - the span loss: cross-entropy of the gold start and end tokens (positives only);
  - the relevance loss: softmax cross-entropy of the relevance logits of the gold
    window and its negatives;
  - the no-answer loss: binary cross-entropy, 0 for the gold window, 1 for the others.
Only the LoRA adapters and the heads learn (AdamW, linear warm-up then decay).
Writes DIR/reader.safetensors and DIR/train-log.json (arguments, loss every N
steps, throughput, wall time, peak memory). Deterministic for a given --seed.
"""

from __future__ import annotations

import json
import random
import resource
import sys
import time
from dataclasses import replace
from pathlib import Path

import click
import torch
from tqdm import tqdm

from qa.config import Settings
from qa.embeddings.conversion import ensure_converted
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
    unanswerable_of,
)
from qa.reader.model import ReaderConfig, base_fingerprint, save_weights, trainable_model
from qa.reader.windows import collate, encode_windows, token_span

PAIRS_PER_STEP = 8
_BUCKET = 50  # batches sorted by length together, to pad little


def _examples(tokenizer, pairs, config: ReaderConfig, rng: random.Random):
    """(positive window, its (start, end) tokens, negative window) per pair, and its
    retrieved negative's window when pairs have one; pairs whose answer fits no
    window, or without a negative, are left out."""
    questions = [p.question.text for p in pairs]
    positives = encode_windows(tokenizer, questions, [p.question.paragraph.text for p in pairs],
                               config.max_length, config.stride)
    negatives = encode_windows(tokenizer, [p.negative_question or p.question.text for p in pairs],
                               [p.negative.text if p.negative else "" for p in pairs],
                               config.max_length, config.stride)
    by_pair = _by_passage(negatives)
    retrieved = any(p.retrieved for p in pairs)
    if retrieved:
        by_retrieved = _by_passage(encode_windows(
            tokenizer, questions, [p.retrieved.text if p.retrieved else "" for p in pairs],
            config.max_length, config.stride))
    chosen: dict[int, tuple] = {}
    for window in positives:
        if window.passage in chosen:
            continue
        span = token_span(window, *pairs[window.passage].question.span)
        if span is not None:
            chosen[window.passage] = (window, span)
    examples = []
    for i, pair in enumerate(pairs):
        if i not in chosen or pair.negative is None or not by_pair.get(i):
            continue
        if not retrieved:
            examples.append((*chosen[i], rng.choice(by_pair[i])))
        elif pair.retrieved is not None and by_retrieved.get(i):
            examples.append((*chosen[i], rng.choice(by_pair[i]), rng.choice(by_retrieved[i])))
    return examples


def _by_passage(windows) -> dict[int, list]:
    found: dict[int, list] = {}
    for window in windows:
        found.setdefault(window.passage, []).append(window)
    return found


def _batches(examples, rng: random.Random):
    """Batches of `PAIRS_PER_STEP` examples of similar lengths, in a seeded order."""
    batches = []
    size = PAIRS_PER_STEP * _BUCKET
    for at in range(0, len(examples), size):
        bucket = sorted(examples[at : at + size],
                        key=lambda ex: max(len(w.input_ids) for w in (ex[0], *ex[2:])))
        batches += [bucket[i : i + PAIRS_PER_STEP] for i in range(0, len(bucket),
                                                                    PAIRS_PER_STEP)]
    rng.shuffle(batches)
    return batches


# The shipped weights' recipe (model card), chosen on PIAF dev: the CLI's defaults and
# those of `train` for callers that leave them out.
EPOCHS = 3.0
NEAR_MISSES = 0.3
SWAPS = 0.1
RELATION_SWAPS = 0.15
WRITTEN = 0.15
WRITTEN_ANSWERABLE = True


def loss_of(model, batch, pad_id: int, bf16: bool = True,
            refused_columns: int | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """Total loss of a batch and its parts.

    The no-answer loss reads the first `refused_columns` windows of each example (all
    of them when None): the retrieval negatives can teach ranking alone.
    """
    n = len(batch)
    # Each example's windows: positive, negative(s); read column by column.
    columns = [[ex[i] for ex in batch] for i in (0, *range(2, len(batch[0])))]
    inputs = collate([w for column in columns for w in column], pad_id)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        start, end, relevance, no_answer = model(**inputs)
    gold_start = torch.tensor([ex[1][0] for ex in batch])
    gold_end = torch.tensor([ex[1][1] for ex in batch])
    ce = torch.nn.functional.cross_entropy
    span = (ce(start[:n], gold_start) + ce(end[:n], gold_end)) / 2
    ranking = ce(relevance.view(len(columns), n).T, torch.zeros(n, dtype=torch.long))
    refused = no_answer.view(len(columns), n)[:refused_columns].reshape(-1)
    labels = torch.cat([torch.zeros(n), torch.ones(len(refused) - n)])
    refusal = torch.nn.functional.binary_cross_entropy_with_logits(refused, labels)
    total = span + ranking + refusal
    return total, {"loss": total.item(), "span": span.item(), "relevance": ranking.item(),
                   "no_answer": refusal.item()}


def train(split: str, out: Path, epochs: float, max_length: int, stride: int, lr: float,
          rank: int, seed: int, limit: int | None, max_steps: int | None,
          log_every: int, cache_dir: Path, progress: bool = True, bf16: bool = True,
          near_misses: float = NEAR_MISSES, swaps: float = SWAPS,
          relation_swaps: float = RELATION_SWAPS, written: float = WRITTEN,
          written_answerable: bool = WRITTEN_ANSWERABLE, hard_answerable: bool = False,
          news_unanswerable: bool = False, retrieval_negatives: str | None = None) -> dict:
    """Train, save DIR/reader.safetensors and DIR/train-log.json; returns the log."""
    began = time.time()
    torch.manual_seed(seed)
    rng = random.Random(seed)
    base = ensure_converted(cache_dir)
    paragraphs, all_questions = load_piaf()
    if written_answerable:
        all_questions += load_answerable(paragraphs)
    if hard_answerable:
        all_questions += load_answerable(paragraphs, HARD_ANSWERABLE_PATH)
    questions = questions_of(all_questions, split)
    questions = questions[:limit] if limit else questions
    in_split = {q.paragraph.number for q in questions_of(all_questions, split)}
    pool = [p for p in paragraphs if p.number in in_split]
    negatives = hard_negatives(questions, pool)
    swapper = QuestionSwapper(questions, pool)
    written_pool = load_unanswerable(paragraphs) if written else []
    if written and news_unanswerable:
        written_pool += load_unanswerable(paragraphs, NEWS_UNANSWERABLE_PATH)
    unanswerable = unanswerable_of(written_pool, split)
    config = ReaderConfig(base_fingerprint=base_fingerprint(base), max_length=max_length,
                          stride=stride, rank=rank, alpha=2 * rank)
    model, tokenizer = trainable_model(base, config)
    trainable = [p for p in model.parameters() if p.requires_grad]
    whole_epochs = max(1, int(-(-epochs // 1)))
    steps_per_epoch = -(-len(questions) // PAIRS_PER_STEP)
    total_steps = max(1, int(epochs * steps_per_epoch))
    if max_steps:
        total_steps = min(total_steps, max_steps)
    optimizer = torch.optim.AdamW(trainable, lr=lr, weight_decay=0.01)
    warmup = max(1, int(0.06 * total_steps))
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(
        (s + 1) / warmup, max(0.0, (total_steps - s) / max(1, total_steps - warmup))))
    args = dict(split=split, epochs=epochs, max_length=max_length, stride=stride, lr=lr,
                rank=rank, seed=seed, limit=limit, max_steps=max_steps, bf16=bf16,
                near_misses=near_misses, swaps=swaps, relation_swaps=relation_swaps,
                written=written, written_answerable=written_answerable)
    # Named only when on: the weights file keeps these args, and the default command
    # must still write v5's bytes.
    if hard_answerable:
        args["hard_answerable"] = True
    if news_unanswerable:
        args["news_unanswerable"] = True
    if retrieval_negatives:
        args["retrieval_negatives"] = retrieval_negatives
    log = {"args": args,
           "questions": len(questions), "pool_paragraphs": len(pool),
           "written_unanswerable": len(unanswerable),
           "trainable_parameters": sum(p.numel() for p in trainable),
           "total_steps": total_steps, "entries": []}
    out.mkdir(parents=True, exist_ok=True)
    model.train()
    step, windows_seen, running = 0, 0, []
    bar = tqdm(total=total_steps, desc="lecteur", disable=not progress, file=sys.stderr)
    train_began = time.time()
    # With `rank`, the retrieval negative (third window) stays out of the no-answer loss.
    refused_columns = 2 if retrieval_negatives == "rank" else None
    for epoch in range(whole_epochs):
        pairs = epoch_pairs(questions, negatives, rng, pool, near_misses, swaps, swapper,
                            relation_swaps, written, unanswerable,
                            retrieval_negatives is not None)
        for batch in _batches(_examples(tokenizer, pairs, config, rng), rng):
            if step >= total_steps:
                break
            loss, parts = loss_of(model, batch, tokenizer.pad_token_id, bf16, refused_columns)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            optimizer.step()
            schedule.step()
            step += 1
            windows_seen += (len(batch[0]) - 1) * len(batch)
            running.append(parts)
            bar.update(1)
            bar.set_postfix(loss=f"{parts['loss']:.3f}")
            if step % log_every == 0 or step == total_steps:
                entry = {"step": step, "epoch": epoch + 1,
                         "lr": schedule.get_last_lr()[0],
                         **{k: sum(r[k] for r in running) / len(running) for k in parts},
                         "windows_per_s": windows_seen / (time.time() - train_began)}
                running = []
                log["entries"].append(entry)
                bar.write(json.dumps(entry))
                (out / "train-log.json").write_text(json.dumps(log, indent=1))
    bar.close()
    if running:
        log["entries"].append({"step": step, **{k: sum(r[k] for r in running) / len(running)
                                                for k in running[0]}})
    config = replace(config, training=log["args"])
    save_weights(model, config, out / "reader.safetensors")
    log["wall_s"] = round(time.time() - began, 1)
    log["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    (out / "train-log.json").write_text(json.dumps(log, indent=1))
    return log


@click.command()
@click.option("--split", type=click.Choice(["train", "all"]), default="train",
              help="train : articles du split d'entraînement seulement (chiffres dev/test) ; "
                   "all : tous les articles PIAF (poids livrés).")
@click.option("--epochs", type=float, default=EPOCHS, show_default=True)
@click.option("--max-length", type=int, default=256, show_default=True,
              help="Jetons par fenêtre (question + passage).")
@click.option("--stride", type=int, default=96, show_default=True,
              help="Jetons de recouvrement entre deux fenêtres d'un long passage.")
@click.option("--lr", type=float, default=1e-3, show_default=True)
@click.option("--rank", type=int, default=32, show_default=True, help="Rang LoRA.")
@click.option("--seed", type=int, default=13, show_default=True)
@click.option("--limit", type=int, default=None, help="N premières questions (tests).")
@click.option("--max-steps", type=int, default=None, help="Arrêt après N pas (tests).")
@click.option("--log-every", type=int, default=25, show_default=True)
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="Dossier où écrire reader.safetensors et train-log.json.")
@click.option("--bf16/--fp32", default=True, show_default=True,
              help="Passe avant en bfloat16 (autocast), 25 % plus rapide sur AVX512-BF16.")
@click.option("--near-misses", type=click.FloatRange(0, 1), default=NEAR_MISSES, show_default=True,
              help="Part des questions dont le négatif est leur paragraphe privé de la "
                   "réponse (plutôt qu'un paragraphe trouvé par BM25).")
@click.option("--swaps", type=click.FloatRange(0, 1), default=SWAPS, show_default=True,
              help="Part des questions dont le négatif est la question au mot clé "
                   "remplacé, posée sur leur paragraphe.")
@click.option("--relation-swaps", type=click.FloatRange(0, 1), default=RELATION_SWAPS,
              show_default=True,
              help="Part des questions dont le négatif est la question au nom commun "
                   "remplacé (noms propres gardés), posée sur leur paragraphe.")
@click.option("--written", type=click.FloatRange(0, 1), default=WRITTEN, show_default=True,
              help="Part des questions dont le négatif est une question écrite sans "
                   "réponse dans leur paragraphe (evals/piaf/piaf-unanswerable-fr.jsonl).")
@click.option("--written-answerable/--piaf-questions-only", default=WRITTEN_ANSWERABLE,
              show_default=True,
              help="Entraîne aussi sur les questions écrites avec réponse "
                   "(evals/piaf/piaf-answerable-fr.jsonl).")
@click.option("--hard-answerable", is_flag=True,
              help="Entraîne aussi sur les questions écrites difficiles à lire "
                   "(evals/piaf/piaf-answerable-hard-fr.jsonl).")
@click.option("--news-unanswerable", is_flag=True,
              help="Ajoute aux négatifs écrits les quasi-réponses de style presse "
                   "(evals/piaf/piaf-unanswerable-news-fr.jsonl).")
@click.option("--retrieval-negatives", type=click.Choice(["rank", "refuse"]), default=None,
              help="Donne à chaque question un second négatif trouvé par BM25, pour "
                   "que la pertinence apprenne à reclasser ce que la recherche trouve ; "
                   "rank : pour la pertinence seulement ; refuse : aussi pour le refus.")
@click.option("--quiet", is_flag=True, help="Sans barre de progression.")
def main(split, epochs, max_length, stride, lr, rank, seed, limit, max_steps, log_every,
         out, bf16, near_misses, swaps, relation_swaps, written, written_answerable,
         hard_answerable, news_unanswerable, retrieval_negatives, quiet):
    """Entraîne le lecteur extractif sur PIAF."""
    log = train(split, out, epochs, max_length, stride, lr, rank, seed, limit, max_steps,
                log_every, Settings.from_env().cache_dir, progress=not quiet,
                bf16=bf16, near_misses=near_misses, swaps=swaps,
                relation_swaps=relation_swaps, written=written,
                written_answerable=written_answerable, hard_answerable=hard_answerable,
                news_unanswerable=news_unanswerable,
                retrieval_negatives=retrieval_negatives)
    click.echo(f"Poids écrits dans {out / 'reader.safetensors'} en {log['wall_s']} s "
               f"(mémoire max {log['peak_rss_mib']} Mio).")


if __name__ == "__main__":
    main()
