"""Follow-up questions in a conversation: what retrieval should search for.

A reader who asks « Pourquoi le gouvernement veut-il suspendre Shein ? » and then
« Et qui l'a annoncé ? » means "who announced the suspension of Shein". The second
question alone names nothing the articles could be matched on, so `contextualize`
prefixes it with the earlier question(s) it depends on:

    >>> contextualize("Et qui l'a annoncé ?",
    ...               ["Pourquoi le gouvernement veut-il suspendre Shein ?"])
    "le gouvernement veut-il suspendre Shein ? Et qui l'a annoncé ?"
    >>> contextualize("Quelle est la peine prévue ?", ["Pourquoi suspendre Shein ?"])
    'Quelle est la peine prévue ?'

A question is a follow-up when it starts with « Et », when it is short and refers
back with a pronoun (« il », « elle », « ça », a clitic « l'a », « les ont »…), or
when it has no content word of its own (« Pourquoi ? »). Everything here is a pure
function of its arguments; the app keeps the history and shows the reader's own words.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from qa.text import bm25_tokens, fold

# A question with a pronoun and at most this many content words leans on the
# previous one; « Pourquoi le gouvernement veut-il suspendre Shein ? » has four
# content words and its « il » only repeats its own subject.
SHORT_QUESTION_CONTENT_WORDS = 2
# Earlier questions kept in front of a follow-up: the one it refers to, plus the
# follow-ups in between when the reader chains them (« Et qui ? », « Et quand ? »).
MAX_CONTEXT_QUESTIONS = 2

_STARTS_WITH_ET = re.compile(r"^\W*et\b")
# Pronouns that are never articles (folded: « ça » → « ca »).
_PRONOUN = re.compile(r"\b(?:il|elle|ils|elles|lui|leur|ca|cela|ceci|celui|celle|ceux|celles|y)\b")
# « le », « la », « les », « l' » and « en » are pronouns only right before a verb
# (« l'a annoncé », « les ont saisis », « en a parlé »); before a noun they are
# articles or a preposition (« la peine », « l'Australie », « en France »).
_VERB_AFTER_CLITIC = (
    r"(?:a|ai|as|avons|avez|ont|avait|avaient|aura|auront|aurait|est|sont|etait|etaient|"
    r"sera|seront|fait|font|va|vont|peut|peuvent|doit|doivent|dit|disent|"
    r"\w+-(?:t-)?(?:il|elle|ils|elles|on))\b"
)
_CLITIC = re.compile(r"(?:\bl'|\b(?:le|la|les|en)\s+)" + _VERB_AFTER_CLITIC)
# The question word that opens an earlier question: kept, it would make the engine
# look for the earlier answer type (a cause for « Pourquoi… ») instead of the new one.
_LEADING_QUESTION_WORD = re.compile(
    r"^\s*(?:et\s+)?(?:est-ce\s+qu[e'’]\s*|qu['’]est-ce\s+qu[ie'’]\s*|pourquoi|comment|"
    r"combien(?:\s+de)?|quand|o[uù]|qui|quoi|que|qu['’]|quel(?:le)?s?)\b\s*",
    re.IGNORECASE,
)


def content_words(question: str) -> set[str]:
    """The stems of the question's own content words (no function or question words)."""
    return set(bm25_tokens(question))


def has_back_reference(question: str) -> bool:
    """Whether the question contains a pronoun that points outside it."""
    folded = fold(question)
    return bool(_PRONOUN.search(folded) or _CLITIC.search(folded))


def is_follow_up(question: str) -> bool:
    """Whether the question only makes sense after the previous one."""
    folded = fold(question)
    if _STARTS_WITH_ET.match(folded):
        return True
    words = content_words(question)
    if not words:
        return True
    return len(words) <= SHORT_QUESTION_CONTENT_WORDS and has_back_reference(question)


def _without_question_word(question: str) -> str:
    """« Pourquoi le gouvernement… ? » → « le gouvernement… ? »; « Et pourquoi ? » → ""."""
    stripped = _LEADING_QUESTION_WORD.sub("", question, count=1).strip()
    return stripped if re.search(r"\w", stripped) else ""


def context_questions(history: Sequence[str]) -> list[str]:
    """The earlier questions a follow-up depends on, oldest first.

    Going back from the latest question to the last one that was not a follow-up
    (the one that set the topic); a long chain keeps that one and the latest follow-ups,
    `MAX_CONTEXT_QUESTIONS` in all.
    """
    asked = [q.strip() for q in history if q and q.strip()]
    chain: list[str] = []
    for previous in reversed(asked):
        chain.insert(0, previous)
        if not is_follow_up(previous):
            break
    if len(chain) <= MAX_CONTEXT_QUESTIONS:
        return chain
    # The question that set the topic, then the latest follow-ups.
    return [chain[0], *chain[len(chain) - MAX_CONTEXT_QUESTIONS + 1:]]


def contextualize(question: str, history: Sequence[str]) -> str:
    """The retrieval query for `question` asked after `history` (the reader's earlier
    questions, oldest first): the question itself, or, for a follow-up, the earlier
    question(s) it depends on followed by it."""
    if not question.strip() or not is_follow_up(question):
        return question
    context = context_questions(history)
    if not context:
        return question
    topic = [words for words in map(_without_question_word, context) if words]
    return " ".join([*topic, question.strip()])
