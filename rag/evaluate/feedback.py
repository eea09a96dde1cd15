"""Readers' ratings of answers: an append-only JSONL file, and its export as eval questions.

One line per rating, appended under a lock and flushed to disk before the call
returns, so ratings survive a restart and concurrent users (threads or processes)
never interleave their lines. `export` turns the ratings whose label is known into
questions `rag eval` reads: a liked answer becomes a regression question (its first
quote is the evidence), a "should not answer" rating an unanswerable question, and a
correction (the reader pointing at the sentence of a shown passage that answers) a
question whose evidence is that sentence. The other complaints (wrong quote, missing
source, dislike) need a person to say what the right answer is: they go to a second
file, to label by hand.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import RagError

LIKE, DISLIKE = "Like", "Dislike"
WRONG_QUOTE = "Citation fausse (wrong quote)"
MISSING_SOURCE = "Source manquante (missing source)"
SHOULD_ABSTAIN = "Ne devait pas répondre (should not answer)"
OPTIONS = (LIKE, DISLIKE, WRONG_QUOTE, MISSING_SOURCE, SHOULD_ABSTAIN)
# Not one of Gradio's feedback options: the reader picks a sentence of a shown passage (`answering_choices`).
CORRECTED = "Phrase qui répond (answering sentence)"
MAX_CHOICE_CHARS = 160  # a sentence is shown this long in the list to pick from
MAX_SHOWN_PASSAGES = 60  # of one document, for the reader to pick the answering sentence from
MAX_LINE_CHARS = 200_000  # a rating with a huge answer is cut, not refused

_lock = threading.Lock()


@dataclass(frozen=True)
class Rating:
    question: str
    history: tuple[str, ...]
    rating: str  # one of OPTIONS
    answer: dict[str, Any]  # the answer as `Answer.to_json()` gave it
    at: str = ""
    answering: dict[str, Any] | None = None  # a correction's sentence (`correction_of`)

    def to_json(self) -> dict[str, Any]:
        data = {"at": self.at or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "question": self.question,
                "history": list(self.history), "rating": self.rating, "answer": self.answer}
        return {**data, "answering": self.answering} if self.answering is not None else data


@dataclass(frozen=True)
class ShownPassage:
    """A passage of a document an answer cites, as a reader can read it: its sentences are the rows the
    index holds (offsets in the document), the ones a correction may point at."""

    citation: int  # the number of a citation of its document in the answer
    start: int
    text: str
    sentences: tuple[tuple[int, int], ...]


def shown_passages(answer: Any, index: Any, max_passages: int = MAX_SHOWN_PASSAGES) -> list[ShownPassage]:
    """The passages of every document the answer cites (its quotes' or, for a refusal, its closest
    passages'), in document order: a reader who opens a citation reads the whole document, and the
    sentence that answers is often beside the one quoted. A long document gives the `max_passages`
    nearest its cited passages."""
    shown: list[ShownPassage] = []
    first_citation: dict[str, int] = {}
    for citation in answer.citations:
        first_citation.setdefault(citation.doc_id, citation.n)
    for doc_id, number in first_citation.items():
        ids = index.passage_ids_of(doc_id)
        cited = [c.position for c in answer.citations if c.doc_id == doc_id]
        # Only the window around each cited passage is ranked: a 10,000-passage PDF costs what a page does.
        around = {p for c in cited for p in range(max(0, c - max_passages), min(len(ids), c + max_passages + 1))}
        nearest = sorted(around, key=lambda p: min(abs(p - c) for c in cited))[:max_passages]
        passages = index.passages_by_id([ids[p] for p in sorted(nearest)])
        rows = {s.sentence_id: s for s in index.sentences_by_id([i for p in passages for i in p.sentence_ids])}
        for passage in passages:
            sentences = tuple((rows[i].start, rows[i].end) for i in passage.sentence_ids if i in rows)
            if sentences:
                shown.append(ShownPassage(number, passage.start, passage.text, sentences))
    return shown


def choice_value(citation: int, start: int, end: int) -> str:
    """How a sentence to point at is named in the chat's list: "<citation>:<start>:<end>", offsets in its document
    (`correction_of` reads it back)."""
    return f"{citation}:{start}:{end}"


def answering_choices(passages: list[ShownPassage]) -> list[tuple[str, str]]:
    """What a reader can point at as the answer: every sentence of the shown passages, as
    (label, "<citation>:<start>:<end>") with the sentence's offsets in its document."""
    choices = []
    for passage in passages:
        for start, end in passage.sentences:
            text = " ".join(passage.text[start - passage.start : end - passage.start].split())
            shown = text if len(text) <= MAX_CHOICE_CHARS else text[: MAX_CHOICE_CHARS - 1] + "…"
            choices.append((f"[{passage.citation}] {shown}", choice_value(passage.citation, start, end)))
    return choices


def correction_of(passages: list[ShownPassage], choice: str) -> dict[str, Any]:
    """The sentence a reader pointed at (`answering_choices`' value), checked against the shown passages:
    {"citation", "start", "end", "text", "passage", "passage_start"}, the passage being what a training
    pair ranks the sentence in. Raises RagError for anything else."""
    shown = str(choice)[:60]
    if not passages:
        raise RagError("not a sentence of this answer: its documents are no longer in the collection "
                       "(removed since); ask again")
    try:
        number, start, end = (int(part) for part in str(choice).split(":"))
    except ValueError:
        raise RagError(f"not a sentence of this answer: {shown!r} (expected <citation>:<start>:<end>)") from None
    for passage in passages:
        if passage.citation == number and (start, end) in passage.sentences:
            return {"citation": number, "start": start, "end": end,
                    "text": passage.text[start - passage.start : end - passage.start],
                    "passage": passage.text, "passage_start": passage.start}
    raise RagError(f"not a sentence of this answer: {shown!r} (no shown passage holds it)")


def rating_of(liked: bool | str) -> str:
    """Gradio's like value (True, False, or the chosen option) as one of OPTIONS."""
    if liked is True:
        return LIKE
    if liked is False:
        return DISLIKE
    if str(liked) in OPTIONS:
        return str(liked)
    shown = str(liked)[:60] + ("…" if len(str(liked)) > 60 else "")  # a forged value never reaches a log whole
    raise RagError(f"unknown feedback {shown!r}; expected one of {', '.join(OPTIONS)}")


class RatingLedger:
    """What each answer was last rated, per client session, so that the ratings file grows with
    readers' decisions and not with requests: a replay (or the second event Gradio sends for one
    click) writes nothing, a change of mind writes a line that supersedes the last (export keeps
    the last), and one answer writes at most `max_lines` lines. Remembers `max_answers` answers."""

    def __init__(self, max_lines: int = 5, max_answers: int = 10_000) -> None:
        self.max_lines, self.max_answers = max_lines, max_answers
        self._seen: dict[str, tuple[str, int]] = {}
        self._lock = threading.Lock()

    def admit(self, answer_key: str, rating: str) -> bool:
        """Whether this rating of this answer is to be written (and remember it if so)."""
        with self._lock:
            last, lines = self._seen.get(answer_key, ("", 0))
            if rating == last or lines >= self.max_lines:
                return False
            self._seen.pop(answer_key, None)
            self._seen[answer_key] = (rating, lines + 1)
            while len(self._seen) > self.max_answers:  # the oldest answers are forgotten first
                self._seen.pop(next(iter(self._seen)))
            return True


def record(path: Path, rating: Rating) -> None:
    """Append one rating durably (fsync), one writer at a time across threads and processes."""
    line = json.dumps(rating.to_json(), ensure_ascii=False)
    if len(line) > MAX_LINE_CHARS:
        line = json.dumps({**rating.to_json(), "answer": {"answer": str(rating.answer.get("answer", ""))[:10_000]}},
                          ensure_ascii=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _lock, open(path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            handle.seek(0, os.SEEK_END)
            if handle.tell():
                handle.seek(-1, os.SEEK_END)
                if handle.read(1) != b"\n":  # a line cut by a crash: end it, so this one stays whole
                    handle.write(b"\n")
            handle.write((line + "\n").encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def read(path: Path) -> list[dict[str, Any]]:
    """Every rating in the file; a line cut by a crash mid-write is skipped, not fatal."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if isinstance(item, dict) and isinstance(item.get("question"), str):
            out.append(item)
    return out


def as_eval_item(rating: dict[str, Any]) -> dict[str, Any] | None:
    """The eval question a rating stands for, or None when a person must label it."""
    answer = rating.get("answer") or {}
    key = hashlib.sha256(json.dumps([rating["question"], rating.get("history", [])]).encode()).hexdigest()[:10]
    item: dict[str, Any] = {"id": f"fb-{key}", "lang": answer.get("language", "fr"), "question": rating["question"]}
    if rating.get("history"):
        item["history"] = rating["history"]
    if rating.get("rating") == SHOULD_ABSTAIN or (rating.get("rating") == LIKE and answer.get("abstained")):
        return {**item, "answerable": False}
    pointed = (rating.get("answering") or {}).get("text") if rating.get("rating") == CORRECTED else None
    if pointed:
        return {**item, "evidence": pointed, "answer": [pointed]}
    quotes = [s.get("text", "") for s in answer.get("sentences", []) if s.get("text")]
    if rating.get("rating") == LIKE and quotes:
        return {**item, "evidence": quotes[0], "answer": [quotes[0]]}
    return None


def latest(path: Path) -> list[dict[str, Any]]:
    """Each question's last rating (a reader who changes their mind supersedes the earlier line)."""
    last: dict[tuple[str, tuple[str, ...]], dict[str, Any]] = {}
    for rating in read(path):
        last[(rating["question"], tuple(rating.get("history", [])))] = rating
    return list(last.values())


def answering_sentence(rating: dict[str, Any]) -> tuple[str, int, int, str] | None:
    """(passage, start, end, language) of the sentence a rating says answers, offsets in the passage:
    a correction's, or a liked answer's first quote; None for any other rating, or one cut for its size."""
    answer = rating.get("answer") or {}
    pointed = rating.get("answering") or {}
    if rating.get("rating") == CORRECTED and pointed.get("passage"):
        passage, offset, chosen = str(pointed["passage"]), int(pointed.get("passage_start", 0)), pointed
    elif rating.get("rating") == LIKE and not answer.get("abstained") and answer.get("sentences"):
        chosen = answer["sentences"][0]
        citation = next((c for c in answer.get("citations", []) if c.get("n") == chosen.get("citation")), None)
        if citation is None:
            return None
        passage, offset = str(citation.get("passage", "")), int(citation.get("start", 0))
    else:
        return None
    start, end = int(chosen.get("start", 0)) - offset, int(chosen.get("end", 0)) - offset
    return (passage, start, end, str(answer.get("language", "fr"))) if 0 <= start < end <= len(passage) else None


def export(path: Path, target: Path) -> tuple[int, int]:
    """Write the labelled ratings to `target` (eval JSONL) and the rest beside it
    (`…-to-label.jsonl`); the last rating of a question wins. Returns (labelled, to label)."""
    labelled, unlabelled = [], []
    for rating in latest(path):
        item = as_eval_item(rating)
        if item is not None:
            labelled.append(item)
        else:
            unlabelled.append({"question": rating["question"], "history": rating.get("history", []),
                               "rating": rating.get("rating"), "answer": (rating.get("answer") or {}).get("answer", "")})
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("".join(json.dumps(i, ensure_ascii=False) + "\n" for i in labelled), encoding="utf-8")
    rest = target.with_name(target.stem + "-to-label.jsonl")
    rest.write_text("".join(json.dumps(i, ensure_ascii=False) + "\n" for i in unlabelled), encoding="utf-8")
    return len(labelled), len(unlabelled)
