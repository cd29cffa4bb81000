"""The match stage: interest profiles → selections (pure, vectorised).

    textproc.py   text analysis: tokens, stems, phrases, acronyms and their expansions
    relevance.py  the lexical index and relevance components (numpy/scipy)
    scoring.py    profiles scored against the index: relevance, trending, authors, feedback
    reasons.py    the one-line reasons shown under each paper
    match.py      ``select``/``rank``: the stage's entry points
    topics.py     the topic catalog (``topics.toml`` merged with config.toml's [topics])

Importing the package is cheap; numpy and the index load with ``match``/``relevance``.
"""
