"""`qa bench`, the command: retrieval, answer, citation, refusal and speed figures on a
question set, printed as a table and written as JSON, Markdown and failures files.

    qa bench evals/seed_qa_dev.jsonl                         the configured corpus
    qa bench evals/piaf/piaf-v1.0.json --retriever dense --retriever bm25 --retriever hybrid
    qa bench evals/piaf/piaf-v1.0.json --split dev --answerer sentence --answerer reader

`qa.cli` registers it; errors are the CLI's (a `QAError` prints one line).
"""

from __future__ import annotations

from pathlib import Path

import click

from qa.config import ANSWERERS, RETRIEVERS, Settings
from qa.eval.report import format_table, write_outputs
from qa.eval.run import DEFAULT_LATENCY_SAMPLE, DEFAULT_WORK_DIR, BenchOptions, run_bench
from qa.reader.data import SPLITS


@click.command("bench")
@click.argument("dataset", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--limit", type=click.IntRange(min=1), help="Poser au plus N questions.")
@click.option("--seed", type=int, help="Mélanger les questions (déterministe) avant --limit.")
@click.option("--k", "k", type=click.IntRange(1, 100), help="Passages pour répondre (QA_TOP_K).")
@click.option("--retriever", "retrievers", multiple=True, type=click.Choice(RETRIEVERS),
              help="Recherche à évaluer ; répétable pour les comparer (défaut : hybrid).")
@click.option("--answerer", "answerers", multiple=True, type=click.Choice(ANSWERERS),
              help="Lecteur à évaluer ; répétable pour les comparer (défaut : QA_ANSWERER).")
@click.option("--split", type=click.Choice(SPLITS),
              help="SQuAD : seulement les articles de cette partie du découpage du lecteur.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Écrire le rapport JSON ici.")
@click.option("--markdown", "markdown_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Écrire le rapport Markdown ici.")
@click.option("--failures", "failures_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Écrire les échecs (JSON Lines) ici.")
@click.option("--latency-sample", type=click.IntRange(min=0), default=DEFAULT_LATENCY_SAMPLE,
              show_default=True,
              help="Questions chronométrées comme qa.answer() (plongement compris).")
@click.option("--work-dir", type=click.Path(file_okay=False, path_type=Path),
              default=DEFAULT_WORK_DIR, show_default=True,
              help="Dossier des corpus et index des jeux SQuAD.")
def bench_command(dataset: Path, limit: int | None, seed: int | None, k: int | None,
                  retrievers: tuple[str, ...], answerers: tuple[str, ...],
                  split: str | None, json_path: Path | None,
                  markdown_path: Path | None, failures_path: Path | None, latency_sample: int,
                  work_dir: Path) -> None:
    """Évaluer l'assistant sur DATASET (JSON Lines comme evals/, ou SQuAD/PIAF/FQuAD)."""
    settings = Settings.from_env()
    options = BenchOptions(retrievers=tuple(dict.fromkeys(retrievers)) or (settings.retriever,),
                           answerers=tuple(dict.fromkeys(answerers)), split=split,
                           k=k, limit=limit, seed=seed, work_dir=work_dir, progress=True,
                           latency_sample=latency_sample)
    result = run_bench(dataset, settings, options)
    click.echo(format_table(result.report))
    write_outputs(result, json_path, markdown_path, failures_path)
