"""A LoRA adapter over the embedding model: found, checked against its base, and merged into a
sentence-transformers folder once, in the cache (numpy and safetensors only: no torch, no peft).

An adapter is a folder in peft's layout (`adapter_config.json`, `adapter_model.safetensors`); one
ships in `rag/data/adapter/` (beside the base model by default, `Embedder.beside`; merged alone with
`RAG_EMBED_ADAPTER=shipped`) with the record of the run that made it (`training.json`),
the script being `rag train` and the data `train/`. Merging adds `scale · B·A` to each adapted weight,
so the merged folder runs in every backend (ONNX export included) at the base model's speed.

The adapter's identity is the hash of its two files: it names the merged folder and enters the model
id, so an index embedded with another adapter (or none) is re-embedded by the usual mechanism.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..digest import sha256_file
from ..errors import ModelError
from .folders import replace_folder

CONFIG_FILE, WEIGHTS_FILE = "adapter_config.json", "adapter_model.safetensors"
MARKER_FILE = "rag-merged.json"
PACKAGED = Path(__file__).resolve().parent.parent / "data" / "adapter"
PEFT_PREFIX = "base_model.model."


@dataclass(frozen=True)
class Adapter:
    folder: Path
    digest: str  # sha256 of the config and the weights, together
    base: str  # the base model id it was trained on
    rank: int
    alpha: float
    rslora: bool = False

    @property
    def scale(self) -> float:
        return self.alpha / (self.rank ** 0.5 if self.rslora else self.rank)

    @property
    def tag(self) -> str:
        return f"adapter:{self.digest[:12]}"


def read_adapter(folder: Path) -> Adapter:
    """The adapter in `folder`. Raises ModelError naming the missing or unreadable file."""
    folder = Path(folder)
    config_path, weights_path = folder / CONFIG_FILE, folder / WEIGHTS_FILE
    for path in (config_path, weights_path):
        if not path.is_file():
            raise ModelError(f"{folder} is not a LoRA adapter: {path.name} is missing "
                             "(set RAG_EMBED_ADAPTER to an adapter folder written by `rag train`, or to none)")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ModelError(f"{config_path} is not JSON ({exc}); write the adapter again with `rag train`") from exc
    if (config.get("peft_type", "LORA") != "LORA" or config.get("use_dora") or config.get("fan_in_fan_out")
            or config.get("rank_pattern") or config.get("alpha_pattern")):
        raise ModelError(f"{config_path}: only plain LoRA adapters can be merged (one rank and alpha for every "
                         "layer; no DoRA, no fan-in-fan-out)")
    digest = hashlib.sha256((sha256_file(config_path) + sha256_file(weights_path)).encode()).hexdigest()
    return Adapter(folder, digest, str(config.get("base_model_name_or_path", "")),
                   int(config["r"]), float(config["lora_alpha"]), bool(config.get("use_rslora", False)))


def resolve_adapter(setting: str, base_id: str, is_default_model: bool) -> Adapter | None:
    """The adapter merged into the model for RAG_EMBED_ADAPTER: `none`; `shipped` (the packaged adapter, for
    the built-in model only); or a folder. `default` merges none: for the built-in model the embedder lays
    the base and the shipped adapter side by side (`Embedder.beside`), and another model is used alone.
    An adapter trained on another base is refused with one sentence."""
    if setting in ("none", "default"):
        return None
    if setting == "shipped":
        if not is_default_model:
            raise ModelError(f"the shipped adapter was trained for the built-in model, not for {base_id}: "
                             "set RAG_EMBED_ADAPTER=none or to an adapter trained for this model")
        adapter = read_adapter(PACKAGED)
    else:
        adapter = read_adapter(Path(setting).expanduser())
    if adapter.base != base_id:
        raise ModelError(f"the adapter {adapter.folder} was trained on {adapter.base or 'an unnamed model'}, not on "
                         f"{base_id}: set RAG_EMBED_ADAPTER=none, or train one for this model with `rag train`")
    return adapter


def merged_weights(base: dict[str, np.ndarray], adapter: Adapter) -> dict[str, np.ndarray]:
    """The base state dict with every adapted weight replaced by W + scale · B·A. Pure.

    Raises ModelError when the adapter names a weight the base does not have."""
    from safetensors.numpy import load_file

    try:
        lora = load_file(str(adapter.folder / WEIGHTS_FILE))
    except Exception as exc:  # safetensors raises its own error type for a damaged file
        raise ModelError(f"{adapter.folder / WEIGHTS_FILE} cannot be read ({exc}); write the adapter again "
                         "with `rag train` (or `rag train-judge` for a judge)") from exc
    merged = dict(base)
    for key in sorted(k for k in lora if k.endswith(".lora_A.weight")):
        module = key[: -len(".lora_A.weight")]
        target = module.removeprefix(PEFT_PREFIX) + ".weight"
        down, up = lora[key], lora.get(module + ".lora_B.weight")
        if target not in merged or up is None:
            raise ModelError(f"the adapter {adapter.folder} does not fit this model: no weight {target}")
        weight = merged[target]
        merged[target] = (weight + adapter.scale * (up.astype(np.float32) @ down.astype(np.float32))).astype(weight.dtype)
    return merged


def merged_folder(base_folder: Path, adapter: Adapter, cache_dir: Path,
                  announce: Callable[[str], None] | None = None) -> Path:
    """A sentence-transformers folder of base + adapter in the cache, written once (atomically: a staging
    folder renamed into place) and reused while its marker names the same base and adapter."""
    from safetensors.numpy import load_file, save_file

    target = Path(cache_dir) / f"{Path(base_folder).name}+{adapter.tag.replace(':', '-')}"
    marker = {"base_folder": str(base_folder), "adapter": adapter.digest}
    try:
        if json.loads((target / MARKER_FILE).read_text(encoding="utf-8")) == marker:
            return target
    except (OSError, ValueError):
        pass
    if announce is not None:
        announce("merging")

    def write(staging: Path) -> None:
        for path in Path(base_folder).rglob("*"):
            relative = path.relative_to(base_folder)
            if path.is_dir():
                (staging / relative).mkdir(parents=True, exist_ok=True)
            elif path.name != "model.safetensors":
                (staging / relative).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, staging / relative)
        weights = merged_weights(load_file(str(Path(base_folder) / "model.safetensors")), adapter)
        save_file({k: np.ascontiguousarray(v) for k, v in weights.items()}, str(staging / "model.safetensors"))
        (staging / MARKER_FILE).write_text(json.dumps(marker), encoding="utf-8")

    return replace_folder(target, write, ".merging-")
