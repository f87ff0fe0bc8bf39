"""PIAF for the reader: reading the SQuAD file, the split by article, BM25 candidates
and the (question, passage) pairs the reader trains and is evaluated on.

The split is by Wikipedia article, never by question, so that no paragraph of a dev
or test article is seen in training: `split_of(title)` hashes the title with a fixed
salt (about 80 / 10 / 10 % of articles). The benchmark reuses it.

Near misses are the gold paragraph itself with the sentences that hold an answer
cut out: the same article and topic, the answer gone. They teach the no-answer head
what a question about the right article that the article does not answer looks like,
which negatives from other paragraphs alone do not (« Qui est le PDG de Shein ? »
over an article on Shein).

Swapped questions are the other side of a near miss: the gold paragraph kept whole,
the question's rarest word that the paragraph holds replaced by a word of the same
kind (a name by a name, a number by a number, a noun by a noun after the same
determiner) taken from another question and absent from the paragraph. « Quand Chopin
a-t-il composé… » over a paragraph on Liszt: the topic matches, the thing asked about
is not there (SQuAD 2.0's entity swaps, made here by rule). A relation swap replaces a
noun only and keeps the names: « Quelle est la capitale du Pakistan ? » over a
paragraph on Pakistan's religion, the shape of the news questions that the article's
names make look answerable (« Qui dirige Shein ? »).

Written unanswerables (`evals/piaf/piaf-unanswerable-fr.jsonl`) are questions written
for this project over PIAF paragraphs, SQuAD 2.0 style, that the paragraph does not
answer though it looks like it does: a fact of the paragraph asked about another
person or thing, an attribute it never gives, a cause it does not state. Rules make
near misses of one shape; these have the variety of the news questions the reader
answered wrongly. Only those of train articles are trained on.

Written answerable questions (`evals/piaf/piaf-answerable-fr.jsonl`) are more
questions over the paragraphs of the train articles, each answered by a span of its
paragraph, written for this project where PIAF asks five per paragraph: other facts,
and paraphrases rather than the paragraph's words. They are trained on like PIAF's.
Two second rounds, news-style near misses (`piaf-unanswerable-news-fr.jsonl`) and
questions hard to read (`piaf-answerable-hard-fr.jsonl`), are trained on only on
request: with both, the spans got better and the refusal worse (the model card).

Hard negatives come from BM25 over all PIAF paragraphs with the project's own tokens
(`qa.text.bm25_tokenize`) and Lucene's BM25 formula, the one `qa.index.lexical`
uses; it is re-implemented in a few lines here because `qa.reader` comes before
`qa.index` in the layer order. A negative is a retrieved paragraph, of the same or
another article, that does not contain any gold answer (compared with `fold`).
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from qa.text import STOP_WORDS, bm25_tokenize, bm25_tokens, fold, split_sentences

PIAF_PATH = Path(__file__).resolve().parents[2] / "evals" / "piaf" / "piaf-v1.0.json"
UNANSWERABLE_PATH = PIAF_PATH.with_name("piaf-unanswerable-fr.jsonl")
ANSWERABLE_PATH = PIAF_PATH.with_name("piaf-answerable-fr.jsonl")
# Second rounds of written questions (evals/piaf/README.md), trained on only on request.
NEWS_UNANSWERABLE_PATH = PIAF_PATH.with_name("piaf-unanswerable-news-fr.jsonl")
HARD_ANSWERABLE_PATH = PIAF_PATH.with_name("piaf-answerable-hard-fr.jsonl")
SPLITS = ("train", "dev", "test")
_SALT = "qa-reader-split-v1"
_WORD = re.compile(r"[^\W_]+(?:-[^\W_]+)*")
K1, B = 1.5, 0.75


@dataclass(frozen=True)
class Paragraph:
    """A PIAF paragraph; `number` is its position in the file (all articles)."""

    number: int
    title: str
    text: str


@dataclass(frozen=True)
class Question:
    """A PIAF question, its paragraph and its gold answers with character spans."""

    id: str
    text: str
    paragraph: Paragraph
    answers: tuple[tuple[str, int], ...]  # (text, start) of each gold answer

    @property
    def span(self) -> tuple[int, int]:
        """[start, end) of the first gold answer in the paragraph."""
        text, start = self.answers[0]
        return start, start + len(text)

    def answered_by(self, passage: str) -> bool:
        """True when the passage contains one gold answer (folded)."""
        folded = fold(passage)
        return any(fold(text) and fold(text) in folded for text, _ in self.answers)


def split_of(title: str) -> str:
    """"train", "dev" or "test" for a Wikipedia article title, by a salted hash."""
    digest = hashlib.sha256(f"{_SALT}:{title}".encode()).digest()
    bucket = int.from_bytes(digest[:8], "big") % 10
    return "train" if bucket < 8 else "dev" if bucket == 8 else "test"


def load_piaf(path: Path = PIAF_PATH) -> tuple[list[Paragraph], list[Question]]:
    """All paragraphs and all questions of a SQuAD v1.1 file, in file order.

    A gold answer whose offset does not point at its text (two in PIAF v1.0) is
    relocated to the first occurrence of that text, or dropped when it has none."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    paragraphs, questions = [], []
    for article in data["data"]:
        for raw in article["paragraphs"]:
            paragraph = Paragraph(len(paragraphs), article["title"], raw["context"])
            paragraphs.append(paragraph)
            for qa in raw["qas"]:
                answers = []
                for answer in qa["answers"]:
                    text, start = answer["text"], answer["answer_start"]
                    if paragraph.text[start : start + len(text)] != text:
                        start = paragraph.text.find(text)
                    if text.strip() and start >= 0:
                        answers.append((text, start))
                if answers:
                    questions.append(Question(qa["id"], qa["question"], paragraph,
                                              tuple(answers)))
    return paragraphs, questions


def questions_of(questions: Sequence[Question], split: str) -> list[Question]:
    """The questions whose article is in `split` ("all" keeps every one)."""
    if split == "all":
        return list(questions)
    return [q for q in questions if split_of(q.paragraph.title) == split]


def _written_rows(paragraphs: Sequence[Paragraph], path: Path):
    """(where, row, paragraph) of each line of a file of questions written over PIAF
    paragraphs (by number in the PIAF file); a row whose title is not its
    paragraph's is an error."""
    for line_number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        row = json.loads(line)
        paragraph = paragraphs[row["paragraph"]]
        where = f"{path}:{line_number}"
        if paragraph.title != row["title"]:
            raise ValueError(f"{where}: the paragraph {row['paragraph']} is of "
                             f"« {paragraph.title} », not « {row['title']} »")
        yield where, row, paragraph


def load_answerable(paragraphs: Sequence[Paragraph],
                    path: Path = ANSWERABLE_PATH) -> list[Question]:
    """The written answerable questions, as `Question`s over their paragraphs; a row
    whose answer does not stand at its offset is an error."""
    found = []
    for where, row, paragraph in _written_rows(paragraphs, path):
        answer, start = row["answer"], row["answer_start"]
        if paragraph.text[start:start + len(answer)] != answer:
            raise ValueError(f"{where}: the paragraph {row['paragraph']} does not hold "
                             f"« {answer} » at {start}")
        found.append(Question(row["id"], row["question"], paragraph, ((answer, start),)))
    return found


@dataclass(frozen=True)
class Unanswerable:
    """A question written over a PIAF paragraph that the paragraph does not answer."""

    id: str
    text: str
    paragraph: Paragraph
    kind: str  # relation, swap, type, cause, role… (see evals/piaf/README.md)


def load_unanswerable(paragraphs: Sequence[Paragraph],
                      path: Path = UNANSWERABLE_PATH) -> list[Unanswerable]:
    """The written unanswerable questions, each with its paragraph."""
    return [Unanswerable(row["id"], row["question"], paragraph, row["kind"])
            for _, row, paragraph in _written_rows(paragraphs, path)]


def unanswerable_of(written: Sequence[Unanswerable], split: str) -> list[Unanswerable]:
    """The written questions whose article is in `split` ("all" keeps every one)."""
    return [u for u in written if split == "all" or split_of(u.paragraph.title) == split]


class Bm25:
    """Lucene BM25 over a fixed list of texts (the same formula as qa.index.lexical)."""

    def __init__(self, texts: Sequence[str]):
        self._postings: dict[str, list[tuple[int, int]]] = defaultdict(list)
        documents = bm25_tokenize(texts)
        self._lengths = [len(doc) for doc in documents]
        for number, tokens in enumerate(documents):
            for term, count in Counter(tokens).items():
                self._postings[term].append((number, count))
        self._avg = sum(self._lengths) / max(len(self._lengths), 1) or 1.0

    def search(self, query: str, k: int) -> list[int]:
        """Numbers of the `k` best texts for `query`, best first (ties: lower number)."""
        n = len(self._lengths)
        scores: dict[int, float] = defaultdict(float)
        for term, times in Counter(bm25_tokenize([query])[0]).items():
            postings = self._postings.get(term, [])
            idf = math.log(1 + (n - len(postings) + 0.5) / (len(postings) + 0.5))
            for number, tf in postings:
                norm = K1 * (1 - B + B * self._lengths[number] / self._avg)
                scores[number] += times * idf * tf / (tf + norm)
        return sorted(scores, key=lambda d: (-scores[d], d))[:k]


def candidates(questions: Sequence[Question], pool: Sequence[Paragraph],
               k: int) -> dict[str, list[Paragraph]]:
    """BM25 top `k` paragraphs of `pool` for each question, by question id."""
    index = Bm25([p.text for p in pool])
    return {q.id: [pool[i] for i in index.search(q.text, k)] for q in questions}


def hard_negatives(questions: Sequence[Question], pool: Sequence[Paragraph],
                   depth: int = 10) -> dict[str, list[Paragraph]]:
    """For each question, the paragraphs of BM25's top `depth` over `pool` that do
    not contain its answer, best first (a question may get none)."""
    found = candidates(questions, pool, depth)
    return {q.id: [p for p in found[q.id] if p.number != q.paragraph.number
                   and not q.answered_by(p.text)] for q in questions}


def near_miss(q: Question) -> Paragraph | None:
    """The gold paragraph without the sentences that hold a gold answer, or None when
    nothing would be left (or an answer would still be in it)."""
    text = q.paragraph.text
    spans = [(start, start + len(answer)) for answer, start in q.answers]
    kept = [text[s:e] for s, e in split_sentences(text)
            if not any(s < end and start < e for start, end in spans)]
    remainder = " ".join(kept)
    if len(remainder) < 40 or q.answered_by(remainder):
        return None
    return Paragraph(number=-1, title=q.paragraph.title, text=remainder)


_DETERMINERS = frozenset(["le", "la", "les", "l", "un", "une", "des", "du", "de", "d", "au", "aux"])


def _kind(word: str, first: bool, after: str) -> str | None:
    """"number", "name" (capitalised, not first), "noun:<determiner>" or None:
    a word swaps only with a word of its kind, so that the question still reads."""
    if word.isdigit():
        return "number"
    if word[0].isupper():
        return None if first else "name"
    determiner = fold(after).lower()
    # Keyed by its determiner, so that a noun swaps with one that agrees with it
    # (« l'émission » → « l'armée », not « l'clergé »).
    return f"noun:{determiner}" if determiner in _DETERMINERS else None


def _words_of(text: str):
    """(match, kind) of each word of a question."""
    matches = list(_WORD.finditer(text))
    for n, match in enumerate(matches):
        yield match, _kind(match.group(), n == 0, matches[n - 1].group() if n else "")


class QuestionSwapper:
    """Makes swapped questions (see the module's docstring) for the questions of one
    split: the words that may come in are those of its questions, the rarity of a
    word is its document frequency over the split's paragraphs."""

    def __init__(self, questions: Sequence[Question], pool: Sequence[Paragraph]):
        self._frequency = Counter(t for p in pool for t in set(bm25_tokens(p.text)))
        words: dict[str, set[str]] = defaultdict(set)
        for q in questions:
            for match, kind in _words_of(q.text):
                if kind and self._content(match.group()):
                    words[kind].add(match.group())
        self._words = {kind: sorted(found) for kind, found in words.items()}

    @staticmethod
    def _content(word: str) -> bool:
        return (len(word) >= 4 or word.isdigit()) and fold(word).lower() not in STOP_WORDS

    def swap(self, q: Question, rng: random.Random, relation: bool = False) -> str | None:
        """`q`'s text with its rarest word found in its paragraph replaced by a word
        of the same kind that the paragraph lacks; None when no word qualifies.
        `relation`: replace a common noun only, keeping the names, so that the
        question still names what the paragraph is about but asks for something
        it does not say (« Qui dirige Shein ? » over a paragraph on Shein)."""
        held = set(bm25_tokens(q.paragraph.text))
        anchors = []
        for match, kind in _words_of(q.text):
            stems = bm25_tokens(match.group())
            if relation and not (kind or "").startswith("noun"):
                continue
            if kind and self._content(match.group()) and stems and all(t in held for t in stems):
                rarity = min(self._frequency.get(t, 0) for t in stems)
                anchors.append((rarity, match.start(), match, kind))
        if not anchors:
            return None
        _, _, match, kind = min(anchors)
        choices = self._words.get(kind, [])
        for _ in range(20):
            if not choices:
                break
            word = rng.choice(choices)
            if not any(t in held for t in bm25_tokens(word)):
                return q.text[: match.start()] + word + q.text[match.end() :]
        return None


@dataclass(frozen=True)
class Pair:
    """A training pair: the question with its gold paragraph (`positive`) and a
    negative paragraph (None when none was found), read with `negative_question`
    when the negative is a swapped question over the gold paragraph; `retrieved`, when
    asked for, is a second negative that retrieval would rank near the gold one, for
    the relevance head to learn to rerank what the assistant retrieves."""

    question: Question
    negative: Paragraph | None
    negative_question: str | None = None
    retrieved: Paragraph | None = None


def epoch_pairs(questions: Sequence[Question], negatives: dict[str, list[Paragraph]],
                rng: random.Random, fallback: Sequence[Paragraph],
                near_misses: float = 0.0, swaps: float = 0.0,
                swapper: QuestionSwapper | None = None,
                relation_swaps: float = 0.0, written: float = 0.0,
                unanswerable: Sequence[Unanswerable] = (),
                retrieved: bool = False) -> list[Pair]:
    """One epoch: every question once, in a seeded random order, each with a written
    unanswerable question over its gold paragraph with probability `written` (when
    `unanswerable` has one for that paragraph), or else its near miss with probability
    `near_misses` (when it has one), or else a swapped question over its gold paragraph
    with probability `swaps` (a name or noun replaced) or `relation_swaps` (a noun
    replaced, the names kept), when `swapper` makes one, else one of its hard
    negatives drawn at random (or a random paragraph of another article of `fallback`
    when BM25 found none). `retrieved`: every pair also gets one of its hard negatives,
    another than its first negative where it has two."""
    by_paragraph: dict[int, list[str]] = defaultdict(list)
    for u in unanswerable:
        by_paragraph[u.paragraph.number].append(u.text)
    order = list(questions)
    rng.shuffle(order)
    pairs = []
    for q in order:
        draw = rng.random()
        if draw < written and by_paragraph.get(q.paragraph.number):
            pairs.append(Pair(q, q.paragraph, rng.choice(by_paragraph[q.paragraph.number])))
            continue
        draw -= written
        if 0 <= draw < near_misses and (miss := near_miss(q)) is not None:
            pairs.append(Pair(q, miss))
            continue
        draw -= near_misses
        if 0 <= draw < swaps + relation_swaps and swapper is not None and (
                swapped := swapper.swap(q, rng, relation=draw >= swaps)) is not None:
            pairs.append(Pair(q, q.paragraph, swapped))
            continue
        pool = _hard_pool(q, negatives, fallback)
        pairs.append(Pair(q, rng.choice(pool) if pool else None))
    if retrieved:
        pairs = [replace(pair, retrieved=_second_negative(pair, negatives, fallback, rng))
                 for pair in pairs]
    return pairs


def _hard_pool(q: Question, negatives: dict[str, list[Paragraph]],
               fallback: Sequence[Paragraph]) -> list[Paragraph]:
    """`q`'s hard negatives, or the paragraphs of the other articles of `fallback`."""
    return negatives.get(q.id) or [p for p in fallback if p.title != q.paragraph.title]


def _second_negative(pair: Pair, negatives: dict[str, list[Paragraph]],
                     fallback: Sequence[Paragraph], rng: random.Random) -> Paragraph | None:
    pool = _hard_pool(pair.question, negatives, fallback)
    others = [p for p in pool if p != pair.negative] or pool
    return rng.choice(others) if others else None
