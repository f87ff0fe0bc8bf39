"""`qa bench`, the evaluation: question sets → retrieval, answer, citation, refusal and
speed figures, and their reports.

One module a concern, in import order (`report` names `run`'s types in annotations only):
`datasets` (JSON Lines and SQuAD files, the questions to ask, a SQuAD file's corpus),
`gold` (gold answer spans in the indexed text, gold chunks and correct citations),
`metrics` (the formulas), `scoring` (one answer against its gold, failures),
`report` (figures, report dict, table, Markdown, files), `run` (the assistant to ask,
every question asked and timed, the report assembled) and `command` (the click
command `qa bench`). Uses the product only through an `Assistant`; developer
benchmarks of the index alone live in `benchmarks/`, outside the package.
"""
