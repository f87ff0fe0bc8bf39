"""Stage 4, answering: a question → retrieved passages → a cited `Answer`.

Owns dense, BM25 and hybrid retrieval with rank fusion, follow-up resolution in a
conversation, the `Answerer` seam with its answerers, and the `Assistant` that holds
the model, the index and the answerer together. Does not own how an answer is shown
(`qa.web`, `qa.cli`) or scored (`qa.eval`).
"""

from qa.answering.assistant import Assistant, answer, clean_question
from qa.answering.base import Answerer, Draft
from qa.answering.sentence import ExtractiveAnswerer

__all__ = ["Answerer", "Assistant", "Draft", "ExtractiveAnswerer", "answer", "clean_question"]
