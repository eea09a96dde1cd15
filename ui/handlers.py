"""The chat's event handlers: the conversation (questions, answers, their sources, ratings, the
API) and the library (documents added, removed, replaced; collections). Imported by `app.build_app`
only, with Gradio."""

import atexit
import functools
import hashlib
import logging
import os
import shutil
import tempfile
import time
import weakref
from pathlib import Path
from typing import Any

import gradio as gr

from rag.config import DEFAULT_COLLECTION
from rag.errors import IndexStoreError, RagError
from rag.evaluate.feedback import (CORRECTED, Rating, answering_choices, correction_of, rating_of, record,
                                  shown_passages)
from rag.ingest.files import safe_name
from rag.text.language import detect_language

from .app import (COLLECTION_LABELS, INTERNAL_ERROR, MAX_QUESTION_CHARS, MAX_UPLOAD_FILES, PLACEHOLDER, UPLOAD_FOLDER,
                  AppState, upload_root)
from .render import (answer_for_copying, answer_markdown, conversation_markdown, document_html, documents_html,
                     escape_html, escape_markdown, sources_html)

log = logging.getLogger("ui.app")  # one logger for the whole chat

PREPARING = {"fr": "Réponse en préparation…", "en": "Preparing the answer…"}
EMPTY_QUESTION = "Écrivez d'abord une question. (Type a question first.)"
TOO_LONG = ("Question trop longue : {count} caractères, la limite est {limit}. Raccourcissez-la. "
            "(Question too long: {count} characters; the limit is {limit}.)")
MAX_TURNS = 200  # answers kept per conversation for their sources, ratings and export
POINT_FIRST = "Choisissez d'abord la phrase qui répond. (Pick the answering sentence first.)"
POINTED = "Merci : correction enregistrée — « {text} ». (Thank you: correction recorded.)"
NOT_RECORDED = "⚠️ La correction n'a pas pu être enregistrée. (The correction could not be recorded.)"
ALREADY_RECORDED = "Correction déjà enregistrée pour cette réponse. (Already recorded for this answer.)"


def answering_list(answer: Any, index: Any) -> Any:
    """The sentences of the documents an answer cites, for the reader to point at the one that answers."""
    try:
        choices = answering_choices(shown_passages(answer, index)) if answer is not None and index is not None else []
    except RagError as exc:  # the store went away meanwhile: nothing to point at, the answer stands
        log.warning("the sentences to point at could not be read (%s)", exc)
        choices = []
    return gr.update(choices=choices, value=None, interactive=bool(choices))


def new_conversation() -> tuple[Any, ...]:
    """What an empty conversation shows, in the order of `conversation` in ui/app.py: the chat, the sources
    panel, the questions asked, the turns, the export, the clipboard, the answer the panel shows, the
    sentences to point at, and the correction's message."""
    return [], sources_html(None), [], [], None, "", None, answering_list(None, None), ""


def is_uploaded_file(path: Path) -> bool:
    """True only for a regular file inside Gradio's upload folder. Gradio accepts a FileData
    whose path points anywhere under the system temp folder, so the handler checks itself."""
    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError):
        return False
    return real.is_file() and real.is_relative_to(upload_root()) and not path.is_symlink()


def page_address(request: Any) -> str:
    """The chat page's address (scheme, host, path) from the request's Referer, for absolute
    permalinks; "" (links relative to the page) when the client sent none."""
    from urllib.parse import quote, urlsplit

    referer = request.headers.get("referer", "") if request is not None else ""
    parts = urlsplit(referer)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return ""
    return f"{parts.scheme}://{quote(parts.netloc, safe=':@[]')}{quote(parts.path or '/', safe='/')}"


def collection_address(page: str, collection: str | None) -> str:
    """The page's address for one collection: permalinks of a named collection's documents say which."""
    from urllib.parse import quote

    return f"{page}?collection={quote(collection)}" if collection and collection != DEFAULT_COLLECTION else page


def _int(value: Any) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None


def _turn_at(turns: list[Any], index: Any) -> dict[str, Any] | None:
    """The answer shown in message `index` (a message's own index, or (row, column) in older Gradio)."""
    number = index[0] if isinstance(index, (tuple, list)) else index
    return next((t for t in turns or [] if t["message"] == number), None)


EXPORT_MAX_AGE = 3600  # seconds: Gradio keeps its own copy of a served file as long (delete_cache)


def conversation_file(turns: list[tuple[str, Any]], base: str, folder: Path | None = None) -> str | None:
    """The conversation as a Markdown file for the export button (None before any answer).

    It is written after every answer, so the files share one folder per process, each named by
    its content, and those older than an hour are removed: one folder per answer, as before, left
    hundreds behind in the system's temp folder after a day of questions. Gradio copies the file
    into its own cache as the answer is sent, so removing ours later loses nothing."""
    if not turns:
        return None
    folder = folder or export_folder()
    text = conversation_markdown(turns, base)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    prune_exports(folder, EXPORT_MAX_AGE)
    # Its own folder per file keeps the download's name "discussion.md".
    path = folder / digest / "discussion.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    os.utime(path.parent)  # the same conversation written again is young again
    return str(path)


@functools.lru_cache(maxsize=1)
def export_folder() -> Path:
    """This process's folder of exported conversations, removed when the process exits."""
    folder = Path(tempfile.mkdtemp(prefix="rag-export-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def prune_exports(folder: Path, max_age: float) -> None:
    """Remove the exports written more than `max_age` seconds ago."""
    oldest = time.time() - max_age
    for entry in folder.iterdir() if folder.is_dir() else ():
        try:
            if entry.stat().st_mtime < oldest:
                shutil.rmtree(entry, ignore_errors=True)
        except OSError:
            continue  # removed by another thread meanwhile


class Conversation:
    """One chat page's questions and answers, over the collection it has chosen."""

    def __init__(self, state: AppState) -> None:
        self.state = state

    def start_turn(self, message: str, history: list[Any]) -> tuple[Any, Any, str]:
        """Show the question at once, with a line saying the answer is on its way. A blank one adds
        nothing to the conversation: the input says what to do instead; so does one over the limit,
        which stays in the input to be shortened rather than being cut."""
        shown = message if isinstance(message, str) else ""
        if not shown.strip():
            return gr.skip(), gr.update(value="", placeholder=EMPTY_QUESTION), ""
        if len(shown) > MAX_QUESTION_CHARS:
            return gr.skip(), gr.update(value=shown, placeholder=PLACEHOLDER), ""
        waiting = PREPARING["en" if detect_language(shown, default="fr") == "en" else "fr"]
        # The question is shown escaped (a pasted image link must not load); the raw text is
        # kept apart for the follow-ups.
        history = list(history or []) + [{"role": "user", "content": escape_markdown(shown)},
                                         {"role": "assistant", "content": f"*{waiting}*"}]
        return history, gr.update(value="", placeholder=PLACEHOLDER), shown

    def warn_if_too_long(self, message: str) -> None:
        if isinstance(message, str) and len(message) > MAX_QUESTION_CHARS:
            gr.Warning(TOO_LONG.format(count=len(message), limit=MAX_QUESTION_CHARS))

    def respond(self, message: str, history: list[Any], asked: list[str], turns: list[Any], collection: str,
                request: gr.Request) -> tuple[Any, ...]:
        if not isinstance(message, str) or not message.strip():  # start_turn refused it: nothing to answer
            return (gr.skip(),) * 9
        history, asked, turns = list(history or []), list(asked or []), list(turns or [])
        base = collection_address(page_address(request), collection)
        answer = index = None
        try:
            answer, index = self.state.engine_for(collection).ask_with_index(message, asked)
            bubble, panel = answer_markdown(answer, base), sources_html(answer, index, base)
        except RagError as exc:
            bubble, panel = escape_markdown(str(exc)), sources_html(None)
            if isinstance(exc, IndexStoreError):  # the store went away: say so where the page shows its state
                self.state.status = f"⚠️ {exc}"
        except Exception:
            log.exception("answering failed")
            bubble, panel = INTERNAL_ERROR, sources_html(None)
        shown = message if isinstance(message, str) else ""
        if history and history[-1].get("role") == "assistant":
            history[-1] = {"role": "assistant", "content": bubble}
        else:
            history += [{"role": "user", "content": escape_markdown(shown[:MAX_QUESTION_CHARS])}, {"role": "assistant", "content": bubble}]
        if answer is not None:
            # The version that answered, weakly: its passages show the answer when clicked again
            # later, without keeping a replaced version's arrays alive for the whole session.
            turns.append({"message": len(history) - 1, "question": shown[:MAX_QUESTION_CHARS], "history": asked[-20:],
                          "answer": answer, "collection": collection or DEFAULT_COLLECTION,
                          "index": weakref.ref(index) if index is not None else None})
        export = conversation_file([(t["question"], t["answer"]) for t in turns], base)
        copied = answer_for_copying(answer, base) if answer is not None else ""
        current = turns[-1]["message"] if answer is not None else None
        return (history, panel, (asked + [shown[:MAX_QUESTION_CHARS]])[-20:], turns[-MAX_TURNS:], export, copied,
                current, answering_list(answer, index), "")

    def show_selected(self, turns: list[Any], request: gr.Request, selected: gr.SelectData) -> tuple[Any, ...]:
        """The sources of the answer a reader clicks, however far up the conversation (and what
        "Copier" copies then, and the sentences a correction can point at)."""
        turn = _turn_at(turns, selected.index)
        if turn is None:
            return (gr.skip(),) * 5
        base = collection_address(page_address(request), turn.get("collection"))
        index = self._index_of(turn)
        return (sources_html(turn["answer"], index, base), answer_for_copying(turn["answer"], base), turn["message"],
                answering_list(turn["answer"], index), "")

    def rate(self, turns: list[Any], request: gr.Request, liked: gr.LikeData) -> None:
        turn = _turn_at(turns, liked.index)
        if turn is None:
            return
        try:
            value = rating_of(liked.liked)
        except RagError as exc:
            log.warning("a rating was refused: %s", exc)
            return
        if not self.state.ratings.admit(f"{getattr(request, 'session_hash', '')}:{turn['message']}", value):
            return
        try:
            record(self.state.engine_for(turn.get("collection")).settings.feedback_path,
                   Rating(turn["question"], tuple(turn["history"]), value, turn["answer"].to_json()))
        except (OSError, RagError) as exc:
            log.warning("a rating could not be recorded (%s)", exc)

    def _index_of(self, turn: dict[str, Any]) -> Any:
        """The version that answered this turn, or, released since, the version now served (None if none)."""
        answered = turn.get("index")
        index = answered() if answered is not None else None
        if index is None:
            try:
                index = self.state.engine_for(turn.get("collection")).index
            except RagError:
                index = None
        return index

    def point(self, turns: list[Any], current: Any, choice: Any, request: gr.Request) -> str:
        """A reader points at the sentence of a shown passage that answers the question: a correction,
        appended to the ratings as they are, and training data for `rag train --feedback`."""
        turn = _turn_at(turns, current)
        if turn is None or not choice:
            return POINT_FIRST
        index = self._index_of(turn)
        try:
            answering = correction_of(shown_passages(turn["answer"], index) if index is not None else [], str(choice))
        except RagError as exc:
            return f"⚠️ {escape_markdown(str(exc))}"
        confirmed = POINTED.format(text=escape_markdown(" ".join(answering["text"].split())[:120]))
        if not self.state.ratings.admit(f"{getattr(request, 'session_hash', '')}:{turn['message']}",
                                        f"{CORRECTED} {choice}"):
            return ALREADY_RECORDED  # the same sentence again (a double click), or this answer's lines are spent
        try:
            record(self.state.engine_for(turn.get("collection")).settings.feedback_path,
                   Rating(turn["question"], tuple(turn["history"]), CORRECTED, turn["answer"].to_json(),
                          answering=answering))
        except (OSError, RagError) as exc:
            log.warning("a correction could not be recorded (%s)", exc)
            return NOT_RECORDED
        return confirmed

    def open_permalink(self, request: gr.Request) -> tuple[str, Any]:
        """`?doc=…&start=…&end=…`: the document view at that span, in its tab."""
        params = dict(request.query_params) if request is not None else {}
        if "doc" not in params:
            return gr.skip(), gr.skip()
        self.state.ready.wait(120)
        try:
            index = self.state.engine_for(params.get("collection")).index if self.state.ready.is_set() else None
        except RagError:
            index = None
        return document_html(index, params["doc"], _int(params.get("start")), _int(params.get("end"))), \
            gr.Tabs(selected="document")

    def ask_api(self, question: str, history: list[str] | None = None, collection: str = "") -> dict:
        """Answer a question; returns the same JSON object as `rag ask --json`.

        question: the question, in French or English.
        history: earlier questions of the conversation, oldest first (optional).
        collection: the collection to ask (optional; the default one when empty).
        """
        try:
            engine = self.state.engine_for(collection if isinstance(collection, str) else "")
            return engine.ask(question, history if isinstance(history, list) else None).to_json()
        except RagError as exc:
            return {"question": str(question)[:200], "error": str(exc), "abstained": True}
        except Exception:
            log.exception("API answer failed")
            return {"question": str(question)[:200], "error": INTERNAL_ERROR, "abstained": True}


class Library:
    """The Documents tab and the collections: what is indexed, and changing it."""

    def __init__(self, state: AppState) -> None:
        self.state = state

    def add_documents(self, files: list[Any] | None, collection: str, progress: Any = gr.Progress()) -> tuple[str, Any, Any]:
        files = files or []
        if not files:
            return documents_html(self.index_or_none(collection)), None, gr.skip()
        if len(files) > MAX_UPLOAD_FILES:
            return f"<p>⚠️ Trop de fichiers : {MAX_UPLOAD_FILES} au plus par envoi (too many files).</p>", None, gr.skip()
        with self.state.upload_lock:
            try:
                engine = self.state.engine_for(collection)
            except RagError as exc:
                return f"<p>⚠️ {escape_html(str(exc))}</p>", None, gr.skip()
            given, forged = [], []
            for item in files:
                source = Path(item if isinstance(item, str) else getattr(item, "name", ""))
                name = getattr(item, "orig_name", None) or source.name
                if is_uploaded_file(source):
                    given.append((source, name))
                else:  # a forged path in the request, not an upload
                    forged.append(safe_name(name))
            try:
                report, placed = engine.add(given, UPLOAD_FOLDER,
                                            progress=lambda stage, done, total: progress(done / max(total, 1), desc=stage))
            except RagError as exc:
                return f"<p>⚠️ {escape_html(str(exc))}</p>", None, gr.skip()
        skipped = {s.source: s.reason for s in report.skipped}
        statuses = [(name, "refusé : ce fichier n'a pas été envoyé par ce navigateur") for name in forged]
        for file in placed:
            stored = f"{UPLOAD_FOLDER}/{file.name}"
            statuses.append((file.name, "refusé : format non pris en charge" if file.refused
                             else f"ignoré : {skipped[stored]}" if stored in skipped else "indexé"))
        return documents_html(report.index, statuses), None, self.document_choices(collection)

    def document_choices(self, collection: str) -> Any:
        index = self.index_or_none(collection)
        names = sorted(d.source for d in index.documents.values()) if index is not None else []
        return gr.Dropdown(choices=names, value=None)

    def change_document(self, action: str, source: str | None, new_file: Any, collection: str,
                        progress: Any = gr.Progress()) -> tuple[str, Any, Any]:
        """Remove the chosen document, or replace it by the file given: the new version is swapped in
        whole, then the listing says what changed (or why nothing did)."""
        if not source:
            return documents_html(self.index_or_none(collection), [("—", "choisissez d'abord un document (choose a "
                                                                     "document)")]), gr.skip(), gr.skip()
        track = lambda stage, done, total: progress(done / max(total, 1), desc=stage)  # noqa: E731
        with self.state.upload_lock:
            try:
                engine = self.state.engine_for(collection)
                if action == "remove":
                    report = engine.remove(source, progress=track)
                    status = "retiré de l'index et du dossier (removed)"
                else:
                    path = Path(new_file if isinstance(new_file, str) else getattr(new_file, "name", "") or "")
                    if not new_file or not is_uploaded_file(path):
                        return documents_html(self.index_or_none(collection), [
                            (source, "choisissez le fichier qui le remplace (choose the new file)")]), gr.skip(), gr.skip()
                    report = engine.replace(source, path, progress=track)
                    status = "remplacé et réindexé (replaced)"
            except RagError as exc:
                return documents_html(self.index_or_none(collection), [(source, f"inchangé : {exc}")]), gr.skip(), gr.skip()
        return documents_html(report.index, [(source, status)]), self.document_choices(collection), None

    def index_or_none(self, collection: str | None = None) -> Any:
        if not self.state.ready.is_set() or self.state.error:
            return None
        try:
            return self.state.engine_for(collection).index
        except RagError:
            return None

    def collection_choices(self, selected: str = DEFAULT_COLLECTION) -> Any:
        names = self.state.collections()
        return gr.Dropdown(choices=[(COLLECTION_LABELS.get(n, n), n) for n in names],
                           value=selected if selected in names else DEFAULT_COLLECTION)

    def switch_collection(self, collection: str) -> tuple[Any, ...]:
        """A conversation belongs to one collection: switching starts a new one, the Documents tab
        shows the collection chosen, and the examples (questions about the seeds) show with the
        default collection only."""
        return (*new_conversation(), documents_html(self.index_or_none(collection)),
                self.document_choices(collection), gr.Dataset(visible=collection in ("", DEFAULT_COLLECTION)))

    def new_collection(self, name: str) -> tuple[Any, Any, str]:
        from rag.index.collections import create_collection

        name = (name or "").strip().lower()
        try:
            create_collection(self.state.settings, name)
        except RagError as exc:
            return gr.skip(), gr.update(value=name), f"⚠️ {exc}"
        return self.collection_choices(name), gr.update(value=""), f"Collection « {name} » créée : ajoutez-y des documents."

    def status_tick(self) -> tuple[str, Any]:
        done = self.state.ready.is_set()
        return self.state.shown_status(), gr.Timer(active=not done)
