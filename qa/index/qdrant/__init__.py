"""The index in Qdrant (`QA_STORE=qdrant`): the same articles, chunks, sentences and
vectors as the local store, in one collection behind an alias, searched with the
Query API (dense, BM25 sparse with the engine's IDF, RRF fusion in the engine).

Modules, one concern each: `engine` (client, schema, alias), `points` (articles →
points, sparse BM25 vectors), `view` (the `QdrantIndex` searches read and its per-question
`Focus`), `search` (the Query API calls), `writer` (builds, updates, rebuilds under an
alias). Importing this package does not import `qdrant_client`; using it needs it
(`pip install 'qa-fr[qdrant]'`).
"""
