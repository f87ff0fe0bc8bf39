"""`qa bench`, the evaluation: question sets → retrieval, answer, citation, refusal and
speed figures, and their reports.

Owns reading data sets (JSON Lines, SQuAD), mapping gold answers onto the indexed text,
the metric formulas, the run and the reports. Uses the product only through an
`Assistant`; developer benchmarks of the index alone live in `benchmarks/`, outside
the package.
"""
