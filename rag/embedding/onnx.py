"""A sentence-transformers folder run by ONNX Runtime: the same vectors, twice as fast, no torch at run time.

sentence-transformers' own `backend="onnx"` needs `optimum-onnx`, whose releases
require transformers < 4.58 while sentence-transformers 6 requires transformers 5:
no set of versions installs both. So the folder's transformer is exported once
with `torch.onnx` (atomically, into the cache, keyed by the model and the export
version), and this module reproduces the folder's pipeline around it: its
tokenizer (`tokenizer.json`, truncation at `max_seq_length`), its Pooling module
(mean, CLS or max) and its Normalize module, as `modules.json` declares them. A
folder with any other module is refused with a sentence naming the torch backend.

Importing this module costs a fraction of a second (onnxruntime, tokenizers,
numpy), against about 8 s for sentence-transformers, which is what makes a cold
`rag ask` fast.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import ModelError

log = logging.getLogger(__name__)

EXPORT_VERSION = 2  # 2: the weights in a file beside the graph, mapped rather than copied
WEIGHTS_FILE = "model.onnx.data"
OPSET = 17
SUPPORTED_MODULES = ("sentence_transformers.models.Transformer", "sentence_transformers.models.Pooling",
                     "sentence_transformers.models.Normalize")


TOKENIZE_WINDOW = 4096  # texts tokenized at once: the length sort still groups well, memory stays flat


@dataclass(frozen=True)
class FolderPipeline:
    """What a sentence-transformers folder does around its transformer."""

    max_seq_length: int
    pooling: str  # "mean", "cls" or "max"
    normalize: bool
    prompts: dict[str, str]
    do_lower_case: bool = False


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path} is missing or not JSON ({exc}); is {path.parent} a sentence-transformers folder?") from exc


def read_pipeline(folder: Path) -> FolderPipeline:
    """The folder's modules, checked. Raises ModelError when ONNX cannot reproduce them."""
    modules = _read_json(folder / "modules.json")
    types = [m.get("type", "") for m in modules]
    unsupported = [t for t in types if t not in SUPPORTED_MODULES]
    if not types or types[0] != SUPPORTED_MODULES[0] or unsupported:
        raise ModelError(f"{folder} has modules the ONNX backend does not reproduce ({', '.join(unsupported) or types}); "
                         "set RAG_EMBED_BACKEND=torch to run it with sentence-transformers.")
    pooling = "mean"
    for module in modules:
        if module["type"].endswith("Pooling"):
            config = _read_json(folder / module["path"] / "config.json")
            modes = [name for name, key in (("mean", "pooling_mode_mean_tokens"), ("cls", "pooling_mode_cls_token"),
                                            ("max", "pooling_mode_max_tokens")) if config.get(key)]
            others = [k for k, v in config.items() if k.startswith("pooling_mode") and v
                      and k not in ("pooling_mode_mean_tokens", "pooling_mode_cls_token", "pooling_mode_max_tokens")]
            if len(modes) != 1 or others:
                raise ModelError(f"{folder}: pooling {modes + others} is not one of mean, cls, max; "
                                 "set RAG_EMBED_BACKEND=torch.")
            pooling = modes[0]
    bert_config = _read_json(folder / "sentence_bert_config.json") if (folder / "sentence_bert_config.json").is_file() else {}
    st_config = _read_json(folder / "config_sentence_transformers.json") \
        if (folder / "config_sentence_transformers.json").is_file() else {}
    return FolderPipeline(
        max_seq_length=int(bert_config.get("max_seq_length") or 512),
        pooling=pooling,
        normalize=any(t.endswith("Normalize") for t in types),
        prompts=dict(st_config.get("prompts") or {}),
        do_lower_case=bool(bert_config.get("do_lower_case", False)),
    )


def _weights_stamp(folder: Path) -> str:
    for name in ("model.safetensors", "pytorch_model.bin"):
        path = folder / name
        if path.is_file():
            stat = path.stat()
            return f"{name}:{stat.st_size}:{stat.st_mtime_ns}"
    raise ModelError(f"{folder} has no model.safetensors or pytorch_model.bin to export")


def export_key(folder: Path, model_id: str) -> str:
    import hashlib

    return hashlib.sha256(f"{model_id}\0{_weights_stamp(folder)}\0{EXPORT_VERSION}\0{OPSET}".encode()).hexdigest()[:16]


def ensure_onnx(folder: Path, cache_dir: Path, model_id: str, quantized: bool = False,
                announce: Callable[[str], None] | None = None) -> Path:
    """The ONNX file of `folder`'s transformer in the cache, exported (and quantized) the first time."""
    target = cache_dir / f"onnx-{export_key(folder, model_id)}"
    name = "model-int8.onnx" if quantized else "model.onnx"
    if not _exported(target):
        if announce is not None:
            announce("exporting")
        if target.exists():  # half of an export (a file deleted by hand): made again whole
            shutil.rmtree(target, ignore_errors=True)
        _export(folder, target)
    if quantized and not (target / name).is_file():
        _quantize(target / "model.onnx", target / name)
    return target / name


def _exported(target: Path) -> bool:
    """Whether `target` holds a whole export: the graph and its weights file."""
    return (target / "model.onnx").is_file() and (target / WEIGHTS_FILE).is_file()


def _export(folder: Path, target: Path) -> None:
    log.info("exporting %s to ONNX (once; about 10 s)", folder)
    try:
        import torch
        from transformers import AutoModel
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
    except ImportError as exc:
        raise ModelError(f"exporting to ONNX needs torch and transformers ({exc}); run: pip install -e .") from exc

    class LastHiddenState(torch.nn.Module):
        def __init__(self, model: Any) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.model(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        model = LastHiddenState(AutoModel.from_pretrained(str(folder), local_files_only=True)).eval()
        sample = torch.tensor([[0, 100, 200, 2]], dtype=torch.int64)
        axes = {0: "batch", 1: "tokens"}
        import warnings

        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (sample, torch.ones_like(sample), torch.zeros_like(sample)),
                              str(staging / "model.onnx"), input_names=["input_ids", "attention_mask", "token_type_ids"],
                              output_names=["last_hidden_state"], opset_version=OPSET, dynamo=False,
                              dynamic_axes={"input_ids": axes, "attention_mask": axes, "token_type_ids": axes,
                                            "last_hidden_state": axes})
        _weights_apart(staging / "model.onnx")
        try:
            os.replace(staging, target)
        except OSError:  # another process exported the same model first: keep theirs
            if not _exported(target):
                raise
    except ModelError:
        raise
    except Exception as exc:
        raise ModelError(f"exporting {folder} to ONNX failed ({type(exc).__name__}: {exc}); "
                         "set RAG_EMBED_BACKEND=torch to run it with sentence-transformers.") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _weights_apart(path: Path) -> None:
    """Moves the graph's weights into WEIGHTS_FILE beside it. ONNX Runtime maps such a file into
    memory instead of copying each weight out of the graph: on the 118M-parameter model, the
    session opens in 0.14 s instead of 0.9 s, holds 144 MB instead of 529 MB (894 MB at its
    peak), and two sessions of models sharing the 384 MB word-embedding table (the embedder and
    the judge) read only the rows their tokens touch. Answers are bit-identical, as fast."""
    import onnx

    model = onnx.load(str(path))
    onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=WEIGHTS_FILE, size_threshold=1024)


def _quantize(source: Path, target: Path) -> None:
    """Dynamic int8 quantization of the weights (activations stay float), written atomically."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    quantize_dynamic(str(source), str(temporary), weight_type=QuantType.QInt8)
    os.replace(temporary, target)


def onnx_session(onnx_path: Path, threads: int) -> Any:
    """An ONNX Runtime session on the CPU. Raises ModelError when the file cannot be loaded."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    # Threads set on purpose: all cores for one call, and no spin-waiting between calls,
    # which otherwise burns the cores another process (or the next stage) needs.
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    try:
        return ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise ModelError(f"{onnx_path} cannot be loaded by ONNX Runtime ({exc}); delete the folder {onnx_path.parent} "
                         "to export it again.") from exc


class SharedTokenizer:
    """A parsed `tokenizer.json`, shared by every model of the process that reads the same file.

    The 250k-piece tokenizer of multilingual-e5 takes 281 MB and 0.7 s to parse, and the embedder
    and the judge read the same one. Each caller gives its own truncation with each batch; a lock
    makes the setting and the encoding one step (the Rust tokenizer also refuses concurrent use)."""

    def __init__(self, tokenizer: Any) -> None:
        tokenizer.no_padding()
        self._tokenizer = tokenizer
        self._lock = threading.Lock()

    def encode_batch(self, inputs: Sequence[Any], max_length: int | None) -> list[Any]:
        """Encodings of texts or (text, text) pairs, cut to `max_length` tokens (longest first; None: whole)."""
        with self._lock:
            if max_length is None:
                self._tokenizer.no_truncation()
            else:
                self._tokenizer.enable_truncation(max_length=max_length, strategy="longest_first")
            return self._tokenizer.encode_batch(list(inputs))

    def token_to_id(self, token: str) -> int | None:
        return self._tokenizer.token_to_id(token)


_TOKENIZERS: dict[str, SharedTokenizer] = {}
_TOKENIZERS_LOCK = threading.Lock()


def shared_tokenizer(path: Path, how_to_fix: str) -> SharedTokenizer:
    """The process's tokenizer for the file at `path`, parsed once per content. Raises ModelError
    naming the file and `how_to_fix` when it cannot be read."""
    import hashlib

    from tokenizers import Tokenizer

    try:
        data = path.read_bytes()
        key = hashlib.sha256(data).hexdigest()
        with _TOKENIZERS_LOCK:
            if key not in _TOKENIZERS:
                _TOKENIZERS[key] = SharedTokenizer(Tokenizer.from_str(data.decode("utf-8")))
            return _TOKENIZERS[key]
    except Exception as exc:
        raise ModelError(f"{path} cannot be read ({type(exc).__name__}: {exc}); {how_to_fix}") from exc


class OnnxModel:
    """A sentence-transformers folder whose transformer runs in ONNX Runtime."""

    def __init__(self, folder: Path, onnx_path: Path, threads: int) -> None:
        self.pipeline = read_pipeline(folder)
        self.tokenizer = shared_tokenizer(folder / "tokenizer.json", "set RAG_EMBED_BACKEND=torch.")
        self.session = onnx_session(onnx_path, threads)
        self.inputs = {i.name for i in self.session.get_inputs()}
        self.dim = int(self.session.get_outputs()[0].shape[-1])
        self.pad_id = self.tokenizer.token_to_id("<pad>") or self.tokenizer.token_to_id("[PAD]") or 0

    def _prepare(self, text: str, prompt: str) -> str:
        text = prompt + text
        return text.lower() if self.pipeline.do_lower_case else text

    def token_count(self, text: str, prompt: str) -> int:
        """Tokens the model sees (prompt and special tokens included) before truncation."""
        return len(self.tokenizer.encode_batch([self._prepare(text, prompt)], None)[0].ids)

    def encode(self, texts: Sequence[str], prompt: str, batch_size: int) -> np.ndarray:
        """(n, dim) float32, in the order of `texts`; batches of similar lengths, padded to their longest.

        Texts are tokenized `TOKENIZE_WINDOW` at a time: the tokenizer's encodings of one huge
        document's tens of thousands of texts would otherwise all be held at once (memory grows
        with what one file holds; bounded this way)."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for first in range(0, len(texts), TOKENIZE_WINDOW):
            window = texts[first : first + TOKENIZE_WINDOW]
            encodings = self.tokenizer.encode_batch([self._prepare(t, prompt) for t in window],
                                                    self.pipeline.max_seq_length)
            order = np.argsort([-len(e.ids) for e in encodings], kind="stable")
            for start in range(0, len(order), batch_size):
                rows = order[start : start + batch_size]
                out[first + rows] = self._run([encodings[i] for i in rows])
        return out

    def _run(self, encodings: list[Any]) -> np.ndarray:
        width = max(len(e.ids) for e in encodings)
        ids = np.full((len(encodings), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(encodings), width), dtype=np.int64)
        types = np.zeros((len(encodings), width), dtype=np.int64)
        for row, encoding in enumerate(encodings):
            ids[row, : len(encoding.ids)] = encoding.ids
            mask[row, : len(encoding.ids)] = 1
            types[row, : len(encoding.ids)] = encoding.type_ids
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        hidden = self.session.run(None, {k: v for k, v in feed.items() if k in self.inputs})[0]
        return self._pool(hidden, mask)

    def _pool(self, hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
        if self.pipeline.pooling == "cls":
            pooled = hidden[:, 0]
        elif self.pipeline.pooling == "max":
            pooled = np.where(mask[..., None] > 0, hidden, -1e9).max(axis=1)
        else:
            weights = mask[..., None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        if self.pipeline.normalize:
            pooled = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return pooled.astype(np.float32)
