"""French text handling: normalisation, folding for matching, unwrapping, sentences, BM25 tokens.

Everything here is a pure function of its input. `fold` is the one comparison key for
gold answers, evidence and deduplication; `split_sentences` gives the spans citations
point at; `bm25_tokens` is the lexical view of a passage or a question.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache

import Stemmer

__all__ = [
    "STOP_WORDS",
    "bm25_tokenize",
    "bm25_tokens",
    "fold",
    "nfc",
    "split_sentences",
    "unwrap",
    "wrap_width",
]

# --------------------------------------------------------------------------- folding

_FOLD_TABLE = str.maketrans(
    {
        "\u2019": "'",  # ’
        "\u2018": "'",  # ‘
        "\u201b": "'",  # ‛
        "\u02bc": "'",  # ʼ
        "`": "'",
        "\u00b4": "'",  # ´
        "\u201c": '"',  # “
        "\u201d": '"',  # ”
        "\u201e": '"',  # „
        "\u201f": '"',  # ‟
        "\u00ab": '"',  # «
        "\u00bb": '"',  # »
        "\u2039": '"',  # ‹
        "\u203a": '"',  # ›
        "\u2010": "-",  # ‐
        "\u2011": "-",  # non-breaking hyphen
        "\u2012": "-",  # ‒
        "\u2013": "-",  # –
        "\u2014": "-",  # —
        "\u2015": "-",  # ―
        "\u2212": "-",  # minus sign
        "\u00a0": " ",
        "\u202f": " ",
        "\u2009": " ",
        "\u2007": " ",
        "\u200a": " ",
        "\u0153": "oe",  # œ
        "\u0152": "oe",  # Œ
        "\u00e6": "ae",  # æ
        "\u00c6": "ae",  # Æ
    }
)
_WHITESPACE = re.compile(r"\s+")


def nfc(text: str) -> str:
    """Unicode NFC, the form article texts and offsets are stored in.

    "e\\u0301" → "é"
    """
    return unicodedata.normalize("NFC", text)


def _strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def fold(text: str) -> str:
    """The matching key: no case, no accents, plain quotes, dashes and spaces.

    "L’Ouganda  “déjà”" → "l'ouganda \\"deja\\""
    "Œuvre — « ça »"    → "oeuvre - \\" ca \\""
    """
    # Translate before NFKC too: NFKC turns "´" into a space plus a combining accent.
    text = unicodedata.normalize("NFKC", text.translate(_FOLD_TABLE))
    text = text.translate(_FOLD_TABLE).casefold()
    text = _strip_accents(text)
    return _WHITESPACE.sub(" ", text).strip()


# --------------------------------------------------------------------------- unwrapping

# A hard-wrapped paragraph ends at a line that ends a sentence (closing quotes and
# brackets may follow the punctuation).
_SENTENCE_END_CHARS = '.!?…:»”")'
# Markdown headings and bullets stand on their own lines even inside wrapped text.
_HEADING = re.compile(r"^#{1,6}\s")
_BLOCK_START = re.compile(r"^(#{1,6}|[-*•])\s")
# Hard wrapping happens at a fixed column, 60 to 120 in practice; beyond this, long
# lines are paragraphs that were never wrapped.
_MAX_WRAP_WIDTH = 200


def _ends_sentence(line: str) -> bool:
    return line.rstrip().endswith(tuple(_SENTENCE_END_CHARS))


def _wrap_width_of(lines: list[str]) -> int | None:
    lengths = sorted(len(line) for line in lines if line.strip())
    if len(lengths) < 3:
        return None
    # Nearest-rank 90th percentile, raised to the longest line near it: a few lines
    # hit the exact wrap column, a stray long line (a URL) must not set it.
    p90 = lengths[math.ceil(0.9 * len(lengths)) - 1]
    width = max(n for n in lengths if n <= 1.1 * p90)
    if width > _MAX_WRAP_WIDTH:
        return None
    filled = sum(1 for n in lengths if n >= 0.75 * width)
    # Unwrapped prose has nearly every line ending a sentence; hard-wrapped prose has
    # most lines cut mid-sentence.
    open_ended = sum(1 for line in lines if line.strip() and not _ends_sentence(line))
    if filled < 0.4 * len(lengths) or open_ended < 0.3 * len(lengths):
        return None
    return width


def wrap_width(text: str) -> int | None:
    """The column `text` is hard-wrapped at, or None when its lines are not wrapped.

    80 lines cut at about 80 columns → 80; one paragraph per long line → None.
    """
    return _wrap_width_of([line.rstrip() for line in text.replace("\r\n", "\n").split("\n")])


def unwrap(text: str) -> str:
    """Paragraphs, one per line, separated by a blank line, from hard-wrapped text.

    A line break is a paragraph break when the line ends a sentence and the next
    line's first word would have fitted on it; otherwise the lines are joined with a
    space. Blank lines always separate paragraphs. Text that is not hard-wrapped
    keeps each line as a paragraph.

    "Le parquet a été saisi ce 2\\njanvier par deux députés.\\nIls ont confirmé avoir fait\\n"
    "des signalements à la justice."   (wrapped at 30 columns)
    → "Le parquet a été saisi ce 2 janvier par deux députés.\\n\\n"
      "Ils ont confirmé avoir fait des signalements à la justice."
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = [line.rstrip() for line in text.split("\n")]
    width = _wrap_width_of(lines)
    paragraphs: list[str] = []
    current: list[str] = []

    def flush() -> None:
        if current:
            paragraphs.append(" ".join(current))
            current.clear()

    for i, raw in enumerate(lines):
        line = raw.strip()
        if not line:
            flush()
            continue
        if _BLOCK_START.match(line):
            flush()
        current.append(line)
        if width is None:
            flush()
            continue
        nxt = lines[i + 1].strip() if i + 1 < len(lines) else ""
        if not nxt or _HEADING.match(line) or _BLOCK_START.match(nxt):
            flush()
            continue
        next_word = nxt.split()[0]
        fits = len(raw) + 1 + len(next_word) <= width
        if _ends_sentence(line) and fits:
            flush()
    flush()
    return "\n\n".join(paragraphs)


# --------------------------------------------------------------------------- sentences


def _word_set(words: str) -> frozenset[str]:
    return frozenset(words.split())


# Abbreviations whose period never ends a sentence (compared lowercased, accents kept).
_ABBREVIATIONS = _word_set(
    """
    m mm mme mmes mlle mlles dr drs pr me mgr st ste sts prof gén col cdt lt sgt adj
    art arts al p pp ex av apr cf vol vols chap fig n no nos env tél coll éd op cit ibid
    hab vs sq suiv réf cie bd
    """
)
# Capitalised words that start sentences far more often than they follow an initial:
# "plateforme X. Une procédure" is two sentences, "J. Dupont" is one.
_SENTENCE_STARTERS = _word_set(
    """
    le la les l un une des du de d ce cet cette ces il elle ils elles on nous vous je
    j tu c ça cela ceci et mais ou donc or ni car en dans pour par sur sous avec sans
    selon depuis après avant alors ainsi puis enfin lors pendant si quand comme leur
    leurs son sa ses mon ma mes notre nos votre vos au aux y a qui que quel quelle
    """
)
_PARAGRAPH_BREAK = re.compile(r"\n[ \t\r\f\v]*\n\s*")
# Terminal punctuation, then closing quotes/brackets (a French « … » closer may sit
# after a thin space), then whitespace or the end.
_TERMINATOR = re.compile(r"[.!?…]+(?:[ \u00a0\u202f]?[»”’)\]]|\"(?=\s|$))*(?=\s|$)")
_INITIALS = re.compile(r"^(?:[^\W\d_]\.-?)*[^\W\d_]$")
_LEADING_PUNCT = "([{«“\"'‘"


def _is_boundary(para: str, match: re.Match[str]) -> bool:
    rest = para[match.end() :].lstrip()
    if not rest:
        return True
    nxt = rest[0]
    if nxt.islower() or nxt in ",;:)]»”":
        return False
    punct = match.group().rstrip(' \u00a0\u202f»”’)]"')
    start = match.start()
    if "…" in punct or "..." in punct:
        # "(…)" and "[…]" mark a cut inside a quotation, not the end of a sentence.
        return not (start > 0 and para[start - 1] in "([")
    if punct != ".":
        return True
    before = para[:start]
    token = before.split()[-1].lstrip(_LEADING_PUNCT) if before.split() else ""
    token = re.split(r"['’]", token)[-1]  # "l’art." is "art."
    if not token:
        return True
    # A lone lowercase letter ("r. 1590", "s. 3") is an abbreviation, never a last word.
    if token.lower() in _ABBREVIATIONS or (len(token) == 1 and token.islower()):
        return False
    if _INITIALS.match(token) and token.isupper():
        next_word = re.match(r"[\w'’-]+", rest)
        word = next_word.group().lower() if next_word else ""
        word = re.split(r"['’]", word)[0]
        return word in _SENTENCE_STARTERS
    return True


def split_sentences(text: str) -> list[tuple[int, int]]:
    """French sentence spans `(start, end)`, end exclusive, without surrounding blanks.

    Knows abbreviations (M., Mme, art., p. ex., av. J.-C.), initials (J. Dupont),
    numbers (60 000, 3.5, 226-8-1), ellipses inside a sentence ("(…)", "... et"),
    closing quotes after the final period, and that a blank line ends a sentence.

    "M. Dupont est venu. “Il pleut.” Puis il est parti !"
    → [(0, 19), (20, 31), (32, 51)]
    """
    spans: list[tuple[int, int]] = []
    para_start = 0
    breaks = [(m.start(), m.end()) for m in _PARAGRAPH_BREAK.finditer(text)]
    breaks.append((len(text), len(text)))
    for para_end, next_start in breaks:
        para = text[para_start:para_end]
        cut = 0
        for match in _TERMINATOR.finditer(para):
            if _is_boundary(para, match):
                _add_span(spans, text, para_start + cut, para_start + match.end())
                cut = match.end()
        _add_span(spans, text, para_start + cut, para_end)
        para_start = next_start
    return spans


def _add_span(spans: list[tuple[int, int]], text: str, start: int, end: int) -> None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if start < end:
        spans.append((start, end))


# --------------------------------------------------------------------------- BM25 tokens

# Function words, in folded form (no accents), so "à"/"a" and "où"/"ou" are one entry.
# Question words are included: they say nothing about which passage holds the answer.
STOP_WORDS = _word_set(
    """
    a ai aie aient aies ait as au aucun aucune aupres aura aurai auraient aurais aurait
    auras aurez auriez aurions aurons auront aussi autre autres aux avaient avais avait
    avant avec avez aviez avions avoir avons ayant c ca car ce ceci cela celle celles
    celui cependant ces cet cette ceux chaque chez ci combien comme comment d dans de
    depuis des deja doit donc dont du elle elles en encore entre es est et etaient etais
    etait etant ete etes etre eu eue eues eus eut fait faut fut il ils j je jusqu l la
    laquelle le lequel les lesquelles lesquels leur leurs lors lorsqu lui m ma mais me
    meme memes mes moi mon n ne ni non nos notre nous on ont or ou par parce parmi pas
    pendant peu peut plus pour pourquoi puis puisqu qu quand que quel quelle quelles
    quels qui quoi s sa sans se selon sera serai seraient serait seras serez seriez
    serions serons seront ses si sien soi soient sois soit sommes son sont sous suis sur
    t ta te tes toi ton tous tout toute toutes tres tu un une unes uns vers via voici
    voila vos votre vous y
    """
)
_ELISION = re.compile(r"\b(?:jusqu|lorsqu|puisqu|quoiqu|qu|[ldjnscmt])['’‘`´ʼ](?=\w)")
_TOKEN = re.compile(r"\d+(?:[-./,]\d+)+|[^\W_]+")
_STEMMER = Stemmer.Stemmer("french")


@lru_cache(maxsize=200_000)
def _stem(word: str) -> str:
    return word if any(ch.isdigit() for ch in word) else _STEMMER.stemWord(word)


def bm25_tokens(text: str) -> list[str]:
    """Stemmed, accent-free content words of `text`, for BM25.

    "Quelle est la peine prévue ?" → ["pein", "prevu"]
    "l’enquête sur l’article 226-8-1" → ["enquet", "articl", "226-8-1"]
    """
    text = unicodedata.normalize("NFKC", text.translate(_FOLD_TABLE)).lower()
    text = _ELISION.sub(" ", text)
    folded = _strip_accents(text.translate(_FOLD_TABLE))
    return [_stem(w) for w in _TOKEN.findall(folded) if w not in STOP_WORDS]


def bm25_tokenize(texts: Iterable[str]) -> list[list[str]]:
    """`bm25_tokens` of each text, in order.

    ["La peine.", "Des amendes"] → [["pein"], ["amend"]]
    """
    return [bm25_tokens(text) for text in texts]
