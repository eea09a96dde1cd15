"""Questions that arrive together share one model call."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from ..errors import ModelError


class _Item:
    __slots__ = ("texts", "vectors", "error", "done")

    def __init__(self, texts: list[str]) -> None:
        self.texts = texts
        self.vectors: np.ndarray | None = None
        self.error: BaseException | None = None
        self.done = False


class QueryBatcher:
    """Questions that arrive while the model is busy are encoded together in its next call.

    Leader/follower: the thread that finds the model idle encodes everything pending
    (its own texts included) in one call; the others wait and take their rows. A lone
    question goes straight through, so single-user latency is unchanged, while under
    load one model call serves many users instead of queuing them one by one.
    """

    def __init__(self, encode: Any) -> None:
        self._encode = encode
        self._cond = threading.Condition()
        self._pending: list[_Item] = []
        self._busy = False

    def encode(self, texts: list[str]) -> np.ndarray:
        item = _Item(texts)
        with self._cond:
            self._pending.append(item)
            while not item.done and self._busy:
                self._cond.wait()
            if item.done:
                return self._result(item)
            # The model is idle and our item is still pending: lead a batch of everything pending.
            self._busy = True
            batch, self._pending = self._pending, []
        try:
            vectors = self._encode([text for it in batch for text in it.texts])
            start = 0
            for it in batch:
                it.vectors, start = vectors[start : start + len(it.texts)], start + len(it.texts)
        except BaseException as exc:  # every waiting caller gets the failure, none hangs
            for it in batch:
                it.error = exc
        finally:
            with self._cond:
                for it in batch:
                    it.done = True
                self._busy = False
                self._cond.notify_all()
        return self._result(item)

    @staticmethod
    def _result(item: _Item) -> np.ndarray:
        if item.error is not None:
            raise item.error
        if item.vectors is None:
            raise ModelError("the embedding batch finished without vectors")
        return item.vectors
