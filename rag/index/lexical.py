"""Lexical search: a BM25 index (bm25s) over the terms of `text.analyzer`, saved without pickle."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

class TermScores:
    """BM25 of a query's terms over one index, read column by column from the sparse matrix:
    the total for every text (to pick the best), and per-group sums for a few chosen rows."""

    def __init__(self, index: "LexicalIndex", terms: list[str],
                 columns: dict[str, tuple[np.ndarray, np.ndarray]] | None = None) -> None:
        self.index = index
        self.size = index.size
        self.columns = columns if columns is not None else {term: index.hits(term) for term in dict.fromkeys(terms)}
        self._total: np.ndarray | None = None

    def only(self, terms: list[str]) -> "TermScores":
        """The same columns, restricted to `terms` (no new read of the matrix)."""
        return TermScores(self.index, terms, {t: self.columns[t] if t in self.columns else self.index.hits(t)
                                              for t in dict.fromkeys(terms)})

    def frequency(self, term: str) -> int:
        """How many indexed texts hold `term`."""
        column = self.columns.get(term)
        return len(column[0]) if column is not None else self.index.frequency(term)

    def top(self, k: int) -> np.ndarray:
        """Rows of the k best positive totals, unordered."""
        return self.index.top(self.total, k)

    @property
    def total(self) -> np.ndarray:
        """BM25 of all the terms, for every indexed text."""
        if self._total is not None:
            return self._total
        rows = [r for r, _ in self.columns.values()]
        if rows and sum(len(r) for r in rows):
            self._total = np.bincount(np.concatenate(rows), weights=np.concatenate([v for _, v in self.columns.values()]),
                                      minlength=self.size).astype(np.float32)
        else:
            self._total = np.zeros(self.size, dtype=np.float32)
        return self._total

    def at(self, rows: np.ndarray, terms: list[str]) -> np.ndarray:
        """Sum of the BM25 contributions of `terms` at the given rows."""
        out = np.zeros(len(rows), dtype=np.float32)
        for term in terms:
            column_rows, values = self.columns.get(term, (np.zeros(0, np.int64), None))
            if len(column_rows) == 0:
                continue
            position = np.searchsorted(column_rows, rows)
            inside = position < len(column_rows)
            match = np.zeros(len(rows), dtype=bool)
            match[inside] = column_rows[position[inside]] == rows[inside]
            out[match] += values[position[match]]
        return out


class LexicalIndex:
    """BM25 over analyzed texts. Scores for every indexed text, or the top k."""

    def __init__(self, model: Any, size: int) -> None:
        self._model = model
        self.size = size
        # bm25s writes each column's rows in ascending order; checked once so queries can rely on it.
        indptr, indices = model.scores["indptr"], np.asarray(model.scores["indices"])
        descending = np.flatnonzero(np.diff(indices) < 0) + 1 if len(indices) > 1 else np.zeros(0, dtype=np.int64)
        self.sorted_columns = bool(np.isin(descending, np.asarray(indptr)).all())

    @classmethod
    def build(cls, token_lists: Sequence[list[str]]) -> "LexicalIndex":
        import bm25s

        model = bm25s.BM25(k1=1.2, b=0.75)
        # bm25s cannot index an empty corpus; one placeholder keeps the shapes valid.
        corpus = [tokens or [""] for tokens in token_lists] or [[""]]
        model.index(corpus, show_progress=False)
        return cls(model, len(token_lists))

    def knows(self, term: str) -> bool:
        return term in self._model.vocab_dict

    def postings(self, term: str) -> np.ndarray:
        """Rows of the indexed texts that contain `term` (read from the sparse matrix, no scoring)."""
        return self.hits(term)[0]

    def hits(self, term: str) -> tuple[np.ndarray, np.ndarray]:
        """(rows, BM25 contributions) of `term`, rows ascending: one column of the score matrix."""
        token = self._model.vocab_dict.get(term)
        if token is None or self.size == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        indptr, indices, data = self._model.scores["indptr"], self._model.scores["indices"], self._model.scores["data"]
        rows = np.asarray(indices[indptr[token] : indptr[token + 1]], dtype=np.int64)
        values = np.asarray(data[indptr[token] : indptr[token + 1]], dtype=np.float32)
        if len(rows) and rows[-1] >= self.size:  # the placeholder text of an empty corpus
            keep = rows < self.size
            rows, values = rows[keep], values[keep]
        if not self.sorted_columns:
            order = np.argsort(rows, kind="stable")
            rows, values = rows[order], values[order]
        return rows, values

    def frequency(self, term: str) -> int:
        """How many indexed texts contain `term`."""
        return len(self.postings(term))

    def top(self, scores: np.ndarray, k: int) -> np.ndarray:
        """Rows of the k best positive scores, unordered (O(n), not a full sort)."""
        positive = np.flatnonzero(scores > 0)
        if len(positive) <= k:
            return positive
        return positive[np.argpartition(-scores[positive], k)[:k]]

    def save(self, folder: Path) -> None:
        self._model.save(str(folder), allow_pickle=False)

    @classmethod
    def load(cls, folder: Path, size: int) -> "LexicalIndex":
        import bm25s

        model = bm25s.BM25.load(str(folder), allow_pickle=False, mmap=False)
        return cls(model, size)
