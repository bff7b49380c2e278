"""Full-text search over the messages a reader may read.

`query.py` parses what the user typed into words, "phrases" and -exclusions (the same syntax on every
database); `postgres.py` and `sqlite.py` run it on that database's own index (a stored tsvector with a
GIN index; an FTS5 table kept in step by triggers); `results.py` is the selector the view calls: the
rooms the reader may read, ranking, pages, snippets.
"""
