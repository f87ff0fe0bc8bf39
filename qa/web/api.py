"""The HTTP API, version 1: `/api/v1/…` and `/healthz`, documented by OpenAPI.

Owns the endpoints (answer, search, list, add and remove articles, health), their
request and response models, and the JSON errors, each a status with a French
`message`. Who may call what, the rate limit and the size of request bodies are
checked before a request gets here (`qa.web.guard`); the endpoints check what only
they can see: the question, the upload's files, whether the index is loaded.

`POST /api/v1/answer` returns exactly `Answer.to_dict()`, the JSON of `qa ask --json`.
Every JSON body escapes `<`, `>` and `&`: a question or an article holding markup
stays inert even where a client shows the raw response as HTML.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Query, Request, Security, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

from qa.answering.assistant import Assistant
from qa.answering.conversation import contextualize
from qa.errors import EmptyQuestion, QAError
from qa.schema import Answer, Passage
from qa.web.intake import UploadRefused, check_upload, stage
from qa.web.security import Busy
from qa.web.service import FAILED_MESSAGE, LOADING_MESSAGE, Service
from qa.web.upload import outcome

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
# Earlier questions a follow-up may carry: the engine reads two at most
# (`conversation.MAX_CONTEXT_QUESTIONS`), a chat rarely runs longer than this.
MAX_PREVIOUS = 50
ERROR_MESSAGE = "Erreur interne : réessayez dans un instant ; le détail est dans le journal."
TOO_LONG = ("La question fait {n} caractères : au plus {limit} (QA_MAX_QUESTION_CHARS). "
            "Raccourcissez-la.")
UNKNOWN_ARTICLE = "Article inconnu : « {id} ». GET /api/v1/articles donne les identifiants."

Retriever = Literal["hybrid", "dense", "bm25"]


class SafeJSON(JSONResponse):
    """JSON in UTF-8 whose `<`, `>`, `&` and line separators are \\u escapes: the same
    data for any JSON parser, and no markup for a browser that would sniff it."""

    def render(self, content: Any) -> bytes:
        text = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        for raw, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                             ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
            text = text.replace(raw, escaped)
        return text.encode("utf-8")


class ApiError(HTTPException):
    """An error answered as `{"error": code, "message": French text}` with `status`."""

    def __init__(self, status: int, code: str, message: str,
                 headers: dict[str, str] | None = None):
        super().__init__(status, message, headers)
        self.code = code


def error_response(status: int, code: str, message: str,
                   headers: dict[str, str] | None = None) -> SafeJSON:
    return SafeJSON({"error": code, "message": message}, status_code=status, headers=headers)


# --------------------------------------------------------------------------- models

class ErrorBody(BaseModel):
    error: str = Field(description="Code stable de l'erreur, par exemple `question_too_long`.")
    message: str = Field(description="Ce qui s'est passé et ce qu'il faut faire, en français.")


class AnswerRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: str = Field(description="La question, en français.",
                          examples=["Quelle est la peine prévue ?"])
    previous: list[str] = Field(
        default_factory=list, max_length=MAX_PREVIOUS,
        description="Les questions précédentes de la conversation, de la plus ancienne à la "
                    "plus récente : une question de suite (« Et qui l'a annoncé ? ») est "
                    "comprise avec elles, comme dans le chat.")
    k: int | None = Field(None, ge=1, le=100, description="Passages retrouvés (QA_TOP_K).")
    retriever: Retriever | None = Field(None, description="Recherche (QA_RETRIEVER).")


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: str = Field(examples=["Shein suspension"])
    k: int | None = Field(None, ge=1, le=100)
    retriever: Retriever | None = None


class SearchHit(BaseModel):
    rank: int
    article_id: str
    title: str
    start: int
    end: int
    text: str
    score: float
    dense_score: float | None
    bm25_score: float | None
    dense_rank: int | None
    bm25_rank: int | None


class SearchResult(BaseModel):
    question: str
    retriever: Retriever
    passages: list[SearchHit]


class ArticleInfo(BaseModel):
    id: str
    title: str
    source: str
    date: str
    tag: str
    language: str
    url: str
    passages: int = Field(description="Nombre de passages indexés de l'article.")


class ArticleList(BaseModel):
    total: int
    offset: int
    articles: list[ArticleInfo]


class UploadResult(BaseModel):
    added: list[ArticleInfo]
    skipped: list[str] = Field(description="« fichier : raison » pour chaque fichier écarté.")
    total: int = Field(description="Articles dans le corpus après l'envoi.")


class Removal(BaseModel):
    removed: str
    total: int


class Health(BaseModel):
    status: Literal["ready", "loading", "failed"]
    articles: int | None = None
    passages: int | None = None


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    said = {400: "Requête ou question invalide.", 401: "Jeton absent ou refusé.",
            403: "Jeton valide mais sans ce droit, ou écritures désactivées.",
            404: "Article inconnu.", 413: "Envoi trop volumineux ou trop de fichiers.",
            415: "Aucun fichier d'un type lisible (vérifié sur le contenu).",
            429: "Trop de requêtes pour ce client (voir Retry-After).",
            503: "Index en cours de chargement, ou serveur saturé (voir Retry-After)."}
    return {code: {"model": ErrorBody, "description": said[code]} for code in codes}


# The scheme is declared for the documentation; `qa.web.guard` checks the token.
_bearer = Security(HTTPBearer(auto_error=False, description=(
    "QA_EDITOR_TOKEN pour écrire ; QA_READ_TOKEN (ou celui d'éditeur) pour lire quand "
    "le serveur le demande.")))
router = APIRouter(prefix=API_PREFIX, dependencies=[_bearer], default_response_class=SafeJSON)
health_router = APIRouter(default_response_class=SafeJSON)


# --------------------------------------------------------------------------- helpers

def service_of(request: Request) -> Service:
    return request.app.state.service


def _assistant(request: Request) -> Assistant:
    service = service_of(request)
    if service.assistant is None:
        message = FAILED_MESSAGE if service.failed else LOADING_MESSAGE
        raise ApiError(503, service.state, message, {"Retry-After": "5"})
    return service.assistant


def _checked(question: str, limit: int) -> str:
    if len(question) > limit:
        raise ApiError(400, "question_too_long", TOO_LONG.format(n=len(question), limit=limit))
    if not question.strip():
        raise ApiError(400, "empty_question", "La question est vide : écrivez une question, "
                       "par exemple « Quelle est la peine prévue ? »")
    return question


def _in_engine(request: Request, work: Callable[[Assistant], Any]) -> Any:
    """`work(assistant)` in one of the engine's slots shared with the page."""
    assistant = _assistant(request)
    try:
        with service_of(request).engine.slot():
            return work(assistant)
    except Busy as exc:
        raise ApiError(503, "busy", str(exc), {"Retry-After": "5"}) from None
    except EmptyQuestion as exc:
        raise ApiError(400, "empty_question", str(exc)) from None
    except QAError as exc:
        raise ApiError(409, "unavailable", str(exc)) from None


def _info(assistant: Assistant, article, passages: dict[str, int]) -> dict[str, Any]:
    meta = article.meta()
    meta.pop("path", None)  # where the server keeps its files is not the client's business
    return {**meta, "passages": passages.get(article.id, 0)}


# --------------------------------------------------------------------------- endpoints

@router.post("/answer", response_model=Answer, summary="Répondre à une question",
             responses=_errors(400, 401, 403, 413, 429, 503))
def post_answer(body: AnswerRequest, request: Request):
    """La réponse citée phrase par phrase : le même JSON que `qa ask --json`."""
    limit = service_of(request).settings.max_question_chars
    question = _checked(body.question, limit)
    for earlier in body.previous:
        if len(earlier) > limit:
            raise ApiError(400, "question_too_long", TOO_LONG.format(n=len(earlier), limit=limit))
    query = contextualize(question, body.previous)
    answer = _in_engine(request, lambda a: a.answer(query, k=body.k, retriever=body.retriever))
    return SafeJSON(answer.to_dict())


@router.post("/search", response_model=SearchResult, summary="Retrouver des passages",
             responses=_errors(400, 401, 403, 413, 429, 503))
def post_search(body: SearchRequest, request: Request):
    """Les passages retrouvés pour la question, avec leurs scores, sans réponse."""
    question = _checked(body.question, service_of(request).settings.max_question_chars)
    hits = _in_engine(request, lambda a: a.search(question, k=body.k, retriever=body.retriever))
    retriever = body.retriever or service_of(request).settings.retriever
    passages = [{"rank": rank, **asdict(Passage.from_hit(hit)),
                 "dense_rank": hit.dense_rank, "bm25_rank": hit.bm25_rank}
                for rank, hit in enumerate(hits, start=1)]
    return SafeJSON({"question": question, "retriever": retriever, "passages": passages})


@router.get("/articles", response_model=ArticleList, summary="Lister les articles indexés",
            responses=_errors(401, 429, 503))
def get_articles(request: Request, offset: Annotated[int, Query(ge=0)] = 0,
                 limit: Annotated[int, Query(ge=1, le=10_000)] = 1000):
    """Les articles, triés par identifiant, `limit` à partir de `offset`."""
    assistant = _assistant(request)
    articles = sorted(assistant.index.articles.values(), key=lambda a: a.id)
    counts = assistant.index.passage_counts
    shown = [_info(assistant, a, counts) for a in articles[offset:offset + limit]]
    return SafeJSON({"total": len(articles), "offset": offset, "articles": shown})


@router.post("/articles", response_model=UploadResult, status_code=201,
             summary="Ajouter des articles (éditeurs)",
             responses={200: {"model": UploadResult, "description": "Aucun article ajouté "
                              "(doublons, fichiers illisibles) : voyez `skipped`."},
                        **_errors(400, 401, 403, 413, 415, 429, 503)})
def post_articles(request: Request, files: Annotated[list[UploadFile], File(
        description="Un ou plusieurs fichiers .md, .txt, .jsonl, .html ou .pdf")]):
    """Indexe les fichiers envoyés en `multipart/form-data` (champ `files`, répété)."""
    service = service_of(request)
    assistant = _assistant(request)
    try:
        check_upload(len(files), sum(f.size or 0 for f in files),
                     service.settings.max_upload_files, service.settings.max_upload_mb)
    except UploadRefused as exc:
        raise ApiError(exc.status, "upload_refused", str(exc)) from None
    with stage((f.filename, f.file) for f in files) as staged:
        if not staged.paths:
            raise ApiError(415, "unsupported_content", " ; ".join(staged.refused))
        try:
            result = assistant.add(staged.paths)
        except QAError as exc:
            message = str(exc).replace(str(staged.folder) + "/", "")
            raise ApiError(409, "not_indexed", message) from None
        added, skipped = outcome(result, assistant, staged.paths, staged.refused)
    counts = assistant.index.passage_counts
    log.info("API upload: %d added, %d skipped", len(added), len(skipped))
    return SafeJSON({"added": [_info(assistant, a, counts) for a in added], "skipped": skipped,
                     "total": len(assistant.index.articles)}, status_code=201 if added else 200)


@router.delete("/articles/{article_id}", response_model=Removal,
               summary="Retirer un article (éditeurs)",
               responses=_errors(401, 403, 404, 429, 503))
def delete_article(article_id: str, request: Request):
    """Retire l'article de l'index ; son fichier part dans `corpus/.trash/`."""
    assistant = _assistant(request)
    if article_id not in assistant.index.articles:
        raise ApiError(404, "unknown_article", UNKNOWN_ARTICLE.format(id=article_id))
    try:
        assistant.remove([article_id])
    except QAError as exc:
        raise ApiError(409, "not_removed", str(exc)) from None
    log.info("API removal of %s", article_id)
    return SafeJSON({"removed": article_id, "total": len(assistant.index.articles)})


@health_router.get("/healthz", response_model=Health, summary="État du serveur",
                   responses={503: {"model": Health, "description": "Index pas encore prêt."}})
def healthz(request: Request):
    """`ready` (200) une fois l'index chargé ; `loading` ou `failed` (503) avant."""
    service = service_of(request)
    if service.assistant is None:
        return SafeJSON({"status": service.state}, status_code=503,
                        headers={"Retry-After": "5"})
    counts = service.assistant.index.manifest.counts
    return SafeJSON({"status": "ready", "articles": counts.articles, "passages": counts.chunks})


# --------------------------------------------------------------------------- errors

def _field(error: dict[str, Any]) -> str:
    return ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "corps"


async def on_validation_error(request: Request, exc: RequestValidationError) -> SafeJSON:
    errors = exc.errors()
    fields = ", ".join(dict.fromkeys(f"« {_field(e)} »" for e in errors))
    message = (f"Requête invalide : vérifiez {fields} (voir /docs pour la forme attendue).")
    details = [{"field": _field(e), "problem": str(e.get("msg", ""))} for e in errors]
    body = {"error": "invalid_request", "message": message, "details": details}
    return SafeJSON(body, status_code=400)


async def on_http_error(request: Request, exc: HTTPException) -> SafeJSON:
    if isinstance(exc, ApiError):
        return error_response(exc.status_code, exc.code, exc.detail, exc.headers)
    french = {404: "Adresse inconnue : la liste des adresses de l'API est sur /docs.",
              405: "Méthode non permise pour cette adresse : voyez /docs."}
    message = french.get(exc.status_code, str(exc.detail))
    return error_response(exc.status_code, f"http_{exc.status_code}", message, exc.headers)


async def on_crash(request: Request, exc: Exception) -> SafeJSON:
    log.exception("API request %s %s failed", request.method, request.url.path)
    return error_response(500, "internal_error", ERROR_MESSAGE)
