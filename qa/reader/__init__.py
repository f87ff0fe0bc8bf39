"""The extractive reader: a cross-encoder over multilingual-e5-small that reranks
passages, points at the answer span in each, and says when a passage holds none.

    data.py       PIAF, the split by article, BM25 hard negatives, training pairs
    windows.py    question + passage windows, token ↔ character offsets
    model.py      the network (encoder + LoRA + heads), its weights file
    inference.py  `Reader.load(cache_dir).read(question, passages)` → `Reading`s
    train.py      `python -m qa.reader.train`
    evaluate.py   `python -m qa.reader.evaluate`
"""

from qa.reader.inference import Reader, Reading

__all__ = ["Reader", "Reading"]
