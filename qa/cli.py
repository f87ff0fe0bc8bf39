"""The `qa` command: index, search, ask (and the subcommands other modules register).

    qa index                               build or refresh index/ from corpus/
    qa ask "Quelle est la peine prévue ?"  answer with [n] markers and sources
    qa ask --json "…"                      the Answer as JSON

Every `QAError` becomes one line on stderr and exit status 1.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

import click

import qa

_SETTINGS_OPTIONS = [
    click.option("--corpus", "corpus_dir", type=click.Path(path_type=Path),
                 help="Dossier des articles (QA_CORPUS_DIR, défaut corpus/)."),
    click.option("--index", "index_dir", type=click.Path(path_type=Path),
                 help="Dossier de l'index (QA_INDEX_DIR, défaut index/)."),
    click.option("--model", "embedding_model", help="Modèle d'embeddings (QA_EMBEDDING_MODEL)."),
]


def settings_options(func):
    for option in reversed(_SETTINGS_OPTIONS):
        func = option(func)
    return func


def make_settings(**overrides) -> qa.Settings:
    try:
        return qa.Settings.from_env(**overrides)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc


class QACommandGroup(click.Group):
    """Turns the package's own errors into one readable line and exit status 1."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except qa.QAError as exc:
            click.echo(f"Erreur : {exc}", err=True)
            sys.exit(1)


@click.group(cls=QACommandGroup)
@click.option("-v", "--verbose", is_flag=True, help="Show progress details and debug logs.")
@click.version_option(qa.__version__, prog_name="qa")
def cli(verbose: bool) -> None:
    """Assistant de questions-réponses en français sur des articles de presse.

    \b
    Exemples :
      qa index
      qa ask "Quelle est la peine prévue ?"
    """
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="qa: %(message)s", stream=sys.stderr)
    for noisy in ("httpx", "sentence_transformers", "transformers", "bm25s", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@cli.command()
@settings_options
def index(**overrides) -> None:
    """Build or refresh the index of the corpus (only when something changed)."""
    started = time.perf_counter()
    assistant = qa.Assistant.load(make_settings(**overrides), progress=True)
    counts = assistant.index.manifest["counts"]
    click.echo(f"Index prêt dans {assistant.settings.index_dir} : {counts['articles']} articles, "
               f"{counts['chunks']} passages, {counts['sentences']} phrases "
               f"({time.perf_counter() - started:.1f} s).")


def _print_answer(result: qa.Answer) -> None:
    click.echo(result.text)
    if result.citations:
        click.echo("\nSources :")
        for c in result.citations:
            date = f", {c.date}" if c.date else ""
            click.echo(f"  [{c.n}] {c.title} ({c.source}{date}) — « {c.quote} »")
    elif result.passages:
        click.echo("\nPassages les plus proches :")
        for p in result.passages[:3]:
            excerpt = p.text if len(p.text) <= 200 else p.text[:200] + "…"
            click.echo(f"  - {p.title} : « {excerpt} »")


@cli.command()
@click.argument("question")
@click.option("--json", "as_json", is_flag=True, help="Print the Answer as JSON.")
@click.option("-k", type=click.IntRange(1, 100), help="Passages to retrieve (QA_TOP_K).")
@click.option("--retriever", type=click.Choice(["hybrid", "dense", "bm25"]))
@settings_options
def ask(question: str, as_json: bool, k: int | None, retriever: str | None, **overrides) -> None:
    """Answer QUESTION from the indexed articles, with numbered sources."""
    qa.clean_question(question)  # a bad question fails before the model loads
    assistant = qa.Assistant.load(make_settings(**overrides))
    result = assistant.answer(question, k=k, retriever=retriever)
    if as_json:
        click.echo(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
    else:
        _print_answer(result)


@cli.command()
@click.argument("question")
@click.option("-k", type=click.IntRange(1, 100), default=5, show_default=True)
@click.option("--retriever", type=click.Choice(["hybrid", "dense", "bm25"]))
@settings_options
def search(question: str, k: int, retriever: str | None, **overrides) -> None:
    """Show the passages retrieved for QUESTION, with their scores (no answer)."""
    qa.clean_question(question)
    assistant = qa.Assistant.load(make_settings(**overrides))
    for rank, hit in enumerate(assistant.search(question, k=k, retriever=retriever), start=1):
        dense = "-" if hit.dense_score is None else f"{hit.dense_score:.3f}"
        bm25 = "-" if hit.bm25_score is None else f"{hit.bm25_score:.2f}"
        click.echo(f"{rank}. {hit.article.title} [{hit.chunk.start}:{hit.chunk.end}] "
                   f"score={hit.score:.4f} dense={dense} bm25={bm25}")
        click.echo(f"   {hit.chunk.text[:160]}")


def main() -> None:
    cli(prog_name="qa")


from .bench import bench_command  # noqa: E402

cli.add_command(bench_command)
