"""A deterministic fake embedder for unit tests of logic (never the only test of a feature).

Texts that share words and character trigrams get close vectors, so retrieval logic
behaves sensibly; nothing is loaded, so a test using it runs in milliseconds.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from typing import Sequence

import numpy as np

from rag.embedding.embedder import ModelInfo

DIM = 64
_WORD = re.compile(r"\w+")


def _features(text: str) -> list[str]:
    folded = "".join(ch for ch in unicodedata.normalize("NFKD", text.lower()) if not unicodedata.combining(ch))
    words = _WORD.findall(folded)
    grams = [f"{w[i:i + 3]}" for w in words for i in range(max(1, len(w) - 2))]
    return words + words + grams


def _bucket(feature: str) -> tuple[int, float]:
    digest = hashlib.blake2b(feature.encode(), digest_size=4).digest()
    value = int.from_bytes(digest, "little")
    return value % DIM, 1.0 if value & (1 << 31) else -1.0


class FakeEmbedder:
    """Hashed bag of words and trigrams, unit length. Counts calls and texts for tests."""

    model_id = "fake-hash-64"
    dim = DIM
    info = ModelInfo(model_id="fake-hash-64", dim=DIM, query_prompt="", passage_prompt="", max_seq_length=512)

    def __init__(self, fail_on: str | None = None) -> None:
        self.fail_on = fail_on  # a text containing this raises, as a model might on odd input
        self.calls = 0
        self.texts = 0

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        if isinstance(texts, str):
            raise TypeError("pass a list of strings, not a single string")
        self.calls += 1
        self.texts += len(texts)
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        for row, text in enumerate(texts):
            if self.fail_on is not None and self.fail_on in text:
                raise RuntimeError(f"cannot embed a text containing {self.fail_on!r}")
            for feature in _features(text) or ["<empty>"]:
                column, sign = _bucket(feature)
                out[row, column] += sign
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1, norms)

    def encode_queries(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        return self._encode(texts)

    def encode_passages(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        return self._encode(texts)


def fake_engine(base, texts: dict[str, str], policies=None, **settings):
    """An engine (fake embedder) over `texts` (file name → text), written under `base`; `settings`
    are passed to `Settings.resolve` (cleaning=…), `policies` to the engine."""
    from rag.config import Settings
    from rag.engine import Engine

    docs = base / "docs"
    docs.mkdir(parents=True, exist_ok=True)
    for name, text in texts.items():
        (docs / name).write_text(text, encoding="utf-8")
    resolved = Settings.resolve(docs_dir=docs, index_dir=base / "index", cache_dir=base / "cache", **settings)
    return Engine(resolved, embedder=FakeEmbedder(), **({"policies": policies} if policies else {}))
