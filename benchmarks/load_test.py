"""Load test of the team server: N readers at once while an editor adds and removes articles.

    python -m benchmarks.load_test --clients 50 --duration 120 --json bench-results/load.json

It starts `qa serve` itself (a subprocess, so that the server's memory is measured apart
from the clients') over a corpus of its own under `--work`: the seed articles plus the
first `--piaf-articles` contexts of PIAF, whose questions become answerable. Then:

1. asks every question once through the API: the reference answers;
2. runs `--clients` readers for `--duration` seconds, each asking a random PIAF or seed
   question in a loop, alternately through `POST /api/v1/answer` and through the chat's
   own endpoint (Gradio's queue, with `gradio_client`, as the page does), while one
   editor adds a new article through the API every `--edit-every` seconds and removes
   the one before;
3. reports each kind of request (count, failures, p50, p95, max), the API answers that
   differ from the reference (the editor only touches articles of its own), and the
   server's resident memory after the reference pass and at the end.

A request fails on a transport error, a status other than 2xx, or a chat reply that is
a server notice (error, « saturé », « Trop de requêtes »). The server runs with
QA_RATE_LIMIT=0 (every client of the test comes from 127.0.0.1, one client for the
limit) and QA_QUEUE_SIZE at least twice the clients; the other settings are defaults.

Clients are threads with blocking httpx and gradio_client: the server, not the client,
is what is measured, and a thread per reader keeps each reader's latency its own. An
asyncio client would be lighter on this side; Locust would add a dependency and still
need gradio_client for the chat.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import shutil
import subprocess
import sys
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
PIAF = ROOT / "evals" / "piaf" / "piaf-v1.0.json"
SEED = ROOT / "evals" / "seed_qa_dev.jsonl"
SERVER_NOTICES = ("Désolé, une erreur", "saturé", "Trop de requêtes")


def build_corpus(work: Path, piaf_articles: int, piaf_questions: int) -> list[str]:
    """The corpus under `work/corpus` (seed articles + PIAF contexts); the questions."""
    from qa.eval.datasets import load_dataset

    corpus = work / "corpus"
    if corpus.exists():
        shutil.rmtree(corpus)
    shutil.copytree(ROOT / "corpus", corpus, ignore=shutil.ignore_patterns("README.md"))
    questions = [q.question for q in load_dataset(SEED).questions]
    if piaf_articles:
        piaf = load_dataset(PIAF)
        rows = list(piaf.contexts[:piaf_articles])
        kept = {row["id"] for row in rows}
        (corpus / "piaf.jsonl").write_text(
            "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), "utf-8")
        questions += [q.question for q in piaf.questions if q.article_id in kept][:piaf_questions]
    return questions


def start_server(work: Path, port: int, token: str, clients: int) -> subprocess.Popen:
    env = {**os.environ, "QA_CORPUS_DIR": str(work / "corpus"),
           "QA_INDEX_DIR": str(work / "index"), "QA_EDITOR_TOKEN": token,
           "QA_HOST": "127.0.0.1", "QA_PORT": str(port), "QA_RATE_LIMIT": "0",
           "QA_QUEUE_SIZE": str(max(64, 2 * clients))}
    log = (work / "server.log").open("w")
    return subprocess.Popen([sys.executable, "-m", "qa", "serve"], env=env, cwd=ROOT,
                            stdout=log, stderr=subprocess.STDOUT)


def wait_ready(url: str, server: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server stopped (status {server.returncode}): see server.log")
        try:
            if httpx.get(url + "/healthz", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise SystemExit("the server was not ready in time")


def rss(pid: int) -> int:
    import psutil

    process = psutil.Process(pid)
    return process.memory_info().rss + sum(c.memory_info().rss
                                           for c in process.children(recursive=True))


def signature(answer: dict) -> tuple:
    """What must not change for an article the editor did not touch."""
    return (answer["text"], answer["answered"],
            tuple((c["article_id"], c["start"], c["end"]) for c in answer["citations"]))


def percentile(ordered: list[float], q: float) -> float:
    """The q-quantile of sorted values, interpolated between the two nearest ranks."""
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


class Recorder:
    """Latencies and failures per kind of request, from every thread."""

    def __init__(self):
        self.lock = threading.Lock()
        self.seconds: dict[str, list[float]] = defaultdict(list)
        self.failures: dict[str, list[str]] = defaultdict(list)
        self.changed: list[str] = []

    def record(self, kind: str, seconds: float, failure: str | None = None) -> None:
        with self.lock:
            self.seconds[kind].append(seconds)
            if failure:
                self.failures[kind].append(failure[:300])

    def summary(self) -> dict[str, dict]:
        out = {}
        for kind, values in sorted(self.seconds.items()):
            ordered = sorted(values)
            out[kind] = {"requests": len(values), "failed": len(self.failures[kind]),
                         "p50_ms": round(percentile(ordered, 0.50) * 1000, 1),
                         "p95_ms": round(percentile(ordered, 0.95) * 1000, 1),
                         "max_ms": round(ordered[-1] * 1000, 1),
                         "first_failures": self.failures[kind][:5]}
        return out


def reader(number: int, url: str, questions: list[str], reference: dict[str, tuple],
           deadline: float, record: Recorder) -> None:
    from gradio_client import Client

    rng = random.Random(number)
    http = httpx.Client(base_url=url, timeout=300)
    chat = Client(url + "/", verbose=False)
    turn = number
    while time.monotonic() < deadline:
        question = rng.choice(questions)
        turn += 1
        started = time.perf_counter()
        if turn % 2:
            kind = "api_answer"
            try:
                response = http.post("/api/v1/answer", json={"question": question})
                failure = None if response.is_success else f"{response.status_code} {response.text}"
            except httpx.HTTPError as exc:
                failure, response = f"{type(exc).__name__}: {exc}", None
            record.record(kind, time.perf_counter() - started, failure)
            if failure is None and question in reference and \
                    signature(response.json()) != reference[question]:
                with record.lock:
                    record.changed.append(question)
        else:
            kind = "chat_ask"
            try:
                _, messages, _ = chat.predict(question, [], api_name="/ask")
                text = json.dumps(messages[-1], ensure_ascii=False) if messages else ""
                bad = [n for n in SERVER_NOTICES if n in text] or (
                    [] if "qa-answer" in text else ["no answer in the chat"])
                failure = f"chat: {bad[0]}" if bad else None
            except Exception as exc:  # the client raises its own kinds
                failure = f"{type(exc).__name__}: {exc}"
            record.record(kind, time.perf_counter() - started, failure)
    http.close()
    chat.close()


def timed(kind: str, record: Recorder, send, *args, **kwargs) -> None:
    """One request of the editor's, recorded like the readers' ones."""
    started = time.perf_counter()
    try:
        response = send(*args, **kwargs)
        failure = None if response.is_success else f"{response.status_code} {response.text}"
    except httpx.HTTPError as exc:
        failure = f"{type(exc).__name__}: {exc}"
    record.record(kind, time.perf_counter() - started, failure)


def editor(url: str, token: str, deadline: float, every: float, record: Recorder) -> int:
    """Adds article n, removes article n - 1, waits; returns how many it added."""
    http = httpx.Client(base_url=url, timeout=300, headers={"Authorization": f"Bearer {token}"})
    previous, n = None, 0
    while time.monotonic() + every < deadline:
        n += 1
        text = (f"Course de pirogues numéro {n} à Lorient\n\nLa course de pirogues numéro {n} "
                f"a réuni {n * 11} équipages dans la rade de Lorient, selon la mairie.\n")
        timed("editor_add", record, http.post, "/api/v1/articles",
              files={"files": (f"pirogues-{n}.txt", text.encode(), "text/plain")})
        if previous:
            timed("editor_remove", record, http.delete, f"/api/v1/articles/{previous}")
        previous = f"pirogues-{n}"
        time.sleep(every)
    if previous:
        http.delete(f"/api/v1/articles/{previous}")
    http.close()
    return n


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--duration", type=float, default=120.0, help="seconds")
    parser.add_argument("--edit-every", type=float, default=10.0, help="seconds between adds")
    parser.add_argument("--piaf-articles", type=int, default=100)
    parser.add_argument("--piaf-questions", type=int, default=300)
    parser.add_argument("--port", type=int, default=7871)
    parser.add_argument("--work", type=Path, default=ROOT / "bench-results" / "load")
    parser.add_argument("--json", type=Path, help="write the results here too")
    args = parser.parse_args(argv)

    args.work.mkdir(parents=True, exist_ok=True)
    questions = build_corpus(args.work, args.piaf_articles, args.piaf_questions)
    url, token = f"http://127.0.0.1:{args.port}", secrets.token_urlsafe(24)
    server = start_server(args.work, args.port, token, args.clients)
    try:
        started = time.monotonic()
        wait_ready(url, server, timeout=1800)
        print(f"server ready in {time.monotonic() - started:.0f} s; {len(questions)} questions",
              flush=True)
        with httpx.Client(base_url=url, timeout=300) as http:
            reference = {q: signature(http.post("/api/v1/answer", json={"question": q}).json())
                         for q in dict.fromkeys(questions)}
        memory_start = rss(server.pid)
        record = Recorder()
        deadline = time.monotonic() + args.duration
        with ThreadPoolExecutor(args.clients + 1) as pool:
            edits = pool.submit(editor, url, token, deadline, args.edit_every, record)
            readers = [pool.submit(reader, i, url, questions, reference, deadline, record)
                       for i in range(args.clients)]
            for future in readers:
                future.result()
            added = edits.result()
        memory_end = rss(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=60)

    kinds = record.summary()
    total = sum(k["requests"] for k in kinds.values())
    failed = sum(k["failed"] for k in kinds.values())
    result = {"clients": args.clients, "duration_s": args.duration, "questions": len(questions),
              "articles_added_and_removed": added, "requests": total, "failed": failed,
              "requests_per_s": round(total / args.duration, 1), "kinds": kinds,
              "answers_changed": len(record.changed),
              "changed_questions": sorted(set(record.changed))[:10],
              "rss_start_mb": round(memory_start / 2**20, 1),
              "rss_end_mb": round(memory_end / 2**20, 1),
              "rss_growth_pct": round(100 * (memory_end - memory_start) / memory_start, 1)}
    print(json.dumps(result, ensure_ascii=False, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, ensure_ascii=False, indent=2), "utf-8")
    return 1 if failed or record.changed else 0


if __name__ == "__main__":
    sys.exit(main())
