"""The `qa` command: index, search, ask (and the subcommands other modules register).

    qa index                               build or refresh index/ from corpus/
    qa ask "Quelle est la peine prévue ?"  answer with [n] markers and sources
    qa ask --json "…"                      the Answer as JSON
    qa add FILES… / qa remove ID… / qa list keep the corpus and its index in step

Every `QAError` becomes one line on stderr and exit status 1.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

import qa
from qa.config import ANSWERERS, RETRIEVERS
from qa.errors import SettingsError
from qa.logs import configure_logging

_SETTINGS_OPTIONS = [
    click.option("--corpus", "corpus_dir", type=click.Path(path_type=Path),
                 help="Dossier des articles (QA_CORPUS_DIR, défaut corpus/)."),
    click.option("--index", "index_dir", type=click.Path(path_type=Path),
                 help="Dossier de l'index (QA_INDEX_DIR, défaut index/)."),
    click.option("--model", "embedding_model", help="Modèle d'embeddings (QA_EMBEDDING_MODEL)."),
    click.option("--answerer", type=click.Choice(ANSWERERS),
                 help="Lecteur : reader (entraîné) ou sentence (QA_ANSWERER)."),
]


def settings_options(func):
    for option in reversed(_SETTINGS_OPTIONS):
        func = option(func)
    return func


def retrieval_options(func):
    """-k and --retriever, whose defaults are the settings' (QA_TOP_K, QA_RETRIEVER)."""
    func = click.option("--retriever", type=click.Choice(RETRIEVERS),
                        help="Recherche : hybrid, dense ou bm25 (défaut : QA_RETRIEVER).")(func)
    return click.option("-k", type=click.IntRange(1, 100),
                        help="Passages à retrouver (défaut : QA_TOP_K).")(func)


def make_settings(**overrides) -> qa.Settings:
    """The environment's settings with the command line's options on top."""
    return qa.Settings.from_env(**overrides)


class QACommandGroup(click.Group):
    """Turns the package's own errors into one readable line and exit status 1, and a
    bad setting into a usage error (status 2), for every subcommand."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except SettingsError as exc:
            raise click.UsageError(str(exc), ctx) from exc
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
    configure_logging(verbose)


def _print_update(report) -> None:
    if report is None:
        click.echo("Corpus inchangé : index réutilisé tel quel.")
        return
    verb = "reconstruit" if report.rebuilt else "mis à jour"
    click.echo(f"Index {verb} en {report.seconds:.1f} s : {len(report.added)} ajouté(s), "
               f"{len(report.updated)} modifié(s), {len(report.removed)} retiré(s), "
               f"{report.unchanged} inchangé(s) ; {report.embedded_chunks} passage(s) encodé(s).")
    for message in report.duplicates:
        click.echo(f"  doublon : {message}")


def _print_counts(assistant) -> None:
    counts, settings = assistant.index.manifest.counts, assistant.settings
    where = (f"la collection Qdrant « {settings.qdrant_collection} » "
             f"({settings.qdrant_url or settings.qdrant_path or 'mode local'})"
             if settings.store == "qdrant" else str(settings.index_dir))
    click.echo(f"Index prêt dans {where} : {counts.articles} articles, "
               f"{counts.chunks} passages, {counts.sentences} phrases.")


@cli.command()
@click.option("--rebuild", is_flag=True, help="Re-embed everything instead of updating.")
@settings_options
def index(rebuild: bool, **overrides) -> None:
    """Build or refresh the index of the corpus: only new or changed articles are embedded."""
    assistant = qa.Assistant.load(make_settings(**overrides), progress=True, rebuild=rebuild)
    _print_update(assistant.last_update)
    _print_counts(assistant)


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@settings_options
def add(paths: tuple[Path, ...], **overrides) -> None:
    """Add article files or folders (.md, .txt, .jsonl, .html, .pdf) to the corpus and index."""
    assistant = qa.Assistant.load(make_settings(**overrides), progress=True)
    result = assistant.add(list(paths), progress=True)
    for path in result.copied:
        click.echo(f"ajouté : {path}")
    for message in result.skipped:
        click.echo(f"ignoré : {message}")
    _print_update(result.report)
    _print_counts(assistant)


@cli.command()
@click.argument("article_ids", nargs=-1, required=True)
@settings_options
def remove(article_ids: tuple[str, ...], **overrides) -> None:
    """Withdraw articles by id (their files are moved to corpus/.trash/)."""
    assistant = qa.Assistant.load(make_settings(**overrides))
    _print_update(assistant.remove(list(article_ids)))
    _print_counts(assistant)


@cli.command(name="list")
@settings_options
def list_articles(**overrides) -> None:
    """List the indexed articles: id, date, passages and title."""
    assistant = qa.Assistant.load(make_settings(**overrides))
    per_article = assistant.index.passage_counts
    for article in sorted(assistant.index.articles.values(), key=lambda a: a.id):
        click.echo(f"{article.id}\t{article.date or '-'}\t{per_article.get(article.id, 0)} "
                   f"passage(s)\t{article.title}")


def _print_answer(result: qa.Answer) -> None:
    short = result.short_answer
    if short and result.text.startswith(short.text):
        # The exact words first, in bold on a terminal (click drops the style elsewhere).
        click.echo(click.style(short.text, bold=True) + result.text[len(short.text):])
    else:
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
@retrieval_options
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
@retrieval_options
@settings_options
def search(question: str, k: int | None, retriever: str | None, **overrides) -> None:
    """Show the passages retrieved for QUESTION, with their scores (no answer)."""
    qa.clean_question(question)
    assistant = qa.Assistant.load(make_settings(**overrides))
    for rank, hit in enumerate(assistant.search(question, k=k, retriever=retriever), start=1):
        dense = "-" if hit.dense_score is None else f"{hit.dense_score:.3f}"
        bm25 = "-" if hit.bm25_score is None else f"{hit.bm25_score:.2f}"
        click.echo(f"{rank}. {hit.article.title} [{hit.chunk.start}:{hit.chunk.end}] "
                   f"score={hit.score:.4f} dense={dense} bm25={bm25}")
        click.echo(f"   {hit.chunk.text[:160]}")


def main(args: list[str] | None = None, prog_name: str = "qa") -> None:
    cli(args=args, prog_name=prog_name)


from qa.eval.command import bench_command  # noqa: E402

cli.add_command(bench_command)


from qa.web.app import serve_command  # noqa: E402

cli.add_command(serve_command)
