"""Answers and sources as safe HTML/Markdown for the browser (pure functions).

Documents may contain HTML, Markdown, image beacons or bidirectional tricks, so
every piece of document text is escaped here, on the server, before any
browser-side sanitizer sees it. The HTML comes from the templates of `ui/templates/`
(Jinja2, autoescaped: no value reaches the page as markup unless built here as
`Markup`, as a passage with its quotes marked is); HTML special characters become entities,
Markdown punctuation is backslash-escaped (no link, image or emphasis can
form), and invisible or direction-changing characters are shown as visible
codes instead of acting on the page.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from rag.answer.compose import on_one_line
from rag.answer.compose import words as wording  # the answer's own words: one choice of quote marks
from rag.index.reader import IndexReader
from rag.records import Answer, Citation, Quote

INVISIBLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff\u00ad]")
# What Markdown reads as structure anywhere in a line: escapes, code, emphasis (a "_" inside a word is
# inert), tables, strikethrough, and a "]" that would close a link, an image or a reference ("](",
# "][", "]:"). Brackets, parentheses, dots, colons, "!" and "#" in running text then need nothing,
# and are left as they are, so that copied text reads clean.
MARKDOWN_INLINE = re.compile(r"([\\`*|~]|\](?=[(\[:])|(?<![^\W_])_|_(?![^\W_]))")
# What Markdown reads as structure only where a line starts: a heading, a list item, a setext
# underline, an ordered list ("1." / "1)").
MARKDOWN_LINE_START = re.compile(r"^([#+\-=]|\d{1,9}(?=[.)]))")
AUTOLINK = re.compile(r"(?<=\w):(?=//)|(?<=\bwww)\.", re.IGNORECASE)  # a bare address would become a link

LABELS = {
    "fr": {"sources": "Sources", "closest": "Passages les plus proches — ils ne répondent pas à la question",
           "passage": "passage", "chars": "car.", "score": "score", "document": "Document", "page": "p.",
           "pages": "pp.", "closest_short": "Passages les plus proches", "for_question": "Question : « {question} »",
           "closeness": "proximité avec la question, relative à la meilleure source",
           "quoted": "phrases citées surlignées", "no_year": "année non précisée", "definition": "définition",
           "empty": "Les sources de la réponse s'afficheront ici.", "see": "voir les sources",
           "open_document": "lire dans le document", "silent": "rien sur ce sujet",
           "compare": "Les sources côte à côte", "position": "caractères", "of": "sur",
           "bad_link": "Ce lien ne correspond à aucun document de l'index (index reconstruit depuis ?).",
           "bad_span": "Le passage demandé n'existe pas dans ce document ; le voici en entier."},
    "en": {"sources": "Sources", "closest": "Closest passages — they do not answer the question",
           "passage": "passage", "chars": "chars", "score": "score", "document": "Document", "page": "p.",
           "pages": "pp.", "closest_short": "Closest passages", "for_question": "Question: “{question}”",
           "closeness": "closeness to the question, relative to the best source",
           "quoted": "quoted sentences highlighted", "no_year": "year not stated", "definition": "definition",
           "empty": "The sources of the answer will appear here.", "see": "see sources",
           "open_document": "read in the document", "silent": "nothing on this topic",
           "compare": "The sources side by side", "position": "characters", "of": "of",
           "bad_link": "This link matches no document of the index (rebuilt since?).",
           "bad_span": "The requested span is not in this document; here it is whole."},
}


def labels(language: str) -> dict[str, str]:
    return LABELS.get(language, LABELS["fr"])


def visible(text: str) -> str:
    """Invisible and direction-changing characters shown as <U+XXXX> codes."""
    return INVISIBLE.sub(lambda m: f"<U+{ord(m.group()):04X}>", text)


def escape_html(text: str) -> str:
    return html.escape(visible(text), quote=True)


@lru_cache(maxsize=1)
def _templates() -> Any:
    """The page's HTML templates (`ui/templates/`): every value autoescaped, and every string made
    `visible` first; a fragment built here (a passage with its quotes marked) comes in as Markup."""
    from jinja2 import Environment, FileSystemLoader, StrictUndefined
    from markupsafe import Markup

    def shown(value: Any) -> Any:
        return visible(value) if isinstance(value, str) and not isinstance(value, Markup) else value

    return Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"), autoescape=True,
                       finalize=shown, undefined=StrictUndefined)


def _render(template: str, **values: Any) -> str:
    return str(_templates().get_template(template).render(**values))


def escape_markdown(text: str) -> str:
    """Text that renders as itself in Markdown with HTML: no tag, link, image or emphasis can form."""
    flat = " ".join(visible(text).split())
    escaped = MARKDOWN_INLINE.sub(r"\\\1", flat)
    escaped = MARKDOWN_LINE_START.sub(lambda m: m.group(1) + "\\" if m.group(1).isdigit() else "\\" + m.group(1),
                                      escaped)
    # Backslashes first, entities second: an entity's "#" must not be escaped into text.
    return html.escape(AUTOLINK.sub(lambda m: "\\" + m.group(), escaped), quote=False)


def permalink(base: str, doc_id: str, start: int, end: int) -> str:
    """The address of the document view at one span: `?doc=…&start=…&end=…` on the chat page (whose
    address `base` may already name a collection: `…/?collection=veille`)."""
    return f"{base}{'&' if '?' in base else '?'}doc={quote(doc_id)}&start={int(start)}&end={int(end)}"


def page_label(citation: Citation, words: dict[str, str]) -> str:
    """"p. 12" or "pp. 12–13" for a document with pages, "" otherwise."""
    if not citation.pages:
        return ""
    return f'{words["pages"] if "–" in citation.pages else words["page"]} {citation.pages}'


def _where(citation: Citation, words: dict[str, str]) -> str:
    """Where a citation stands in its document, as a report cites it: its page first when it has one."""
    page = page_label(citation, words)
    return (f"{page}, " if page else "") + (f"{words['passage']} {citation.position + 1}, "
                                            f"{words['chars']} {citation.start}–{citation.end}")


def _marker(n: int, link: str = "") -> str:
    return f"**[[{n}]]({link})**" if link else f"**[{n}]**"


def citations_footer(answer: Answer, base: str | None) -> str:
    """The citations written out (title, year, position, link): what the copy button copies with the quotes."""
    words = labels(answer.language)
    head = words["closest_short"] if answer.abstained else words["sources"]
    lines = [f"**{escape_markdown(head)} :**" if answer.language == "fr" else f"**{escape_markdown(head)}:**"]
    for c in answer.citations:
        year = str(c.year) if c.year else words["no_year"]
        where = _where(c, words)
        link = f" — [{escape_markdown(words['open_document'])}]({permalink(base, c.doc_id, c.start, c.end)})" \
            if base is not None else ""
        lines.append(f"[{c.n}] *{escape_markdown(c.title)}* ({escape_markdown(year)}), "
                     f"{escape_markdown(c.document)}, {escape_markdown(where)}{link}")
    return "  \n".join(lines)


def answer_for_copying(answer: Answer, base: str) -> str:
    """The answer as plain text, its citations written out (title, year, position, link): what
    "Copier la réponse" puts on the clipboard, to paste in a report. Not Markdown, so no escapes."""
    words = labels(answer.language)
    lines = [answer.answer or answer.message, ""]
    if answer.citations:
        head = words["closest_short"] if answer.abstained else words["sources"]
        lines.append(f"{head} :" if answer.language == "fr" else f"{head}:")
    for c in answer.citations:
        year = str(c.year) if c.year else words["no_year"]
        lines.append(f"[{c.n}] {c.title} ({year}), {c.document}, {_where(c, words)} — "
                     f"{permalink(base, c.doc_id, c.start, c.end)}")
    return "\n".join(lines).strip() + "\n"


def answer_markdown(answer: Answer, base: str | None = None) -> str:
    """The chat bubble, from the answer's records: its words, the quotes escaped, inline [n] markers.

    With `base` (the chat page's address), each [n] links to the document view at the quote,
    and the citations are written out under the answer, so a copied answer keeps them.
    """
    if answer.message:
        return escape_markdown(answer.message)
    if base is not None and answer.abstained and answer.citations:
        # The footer, headed "Passages les plus proches", lists them with their links: said once.
        return f"{_refusal_head(answer)}\n\n{citations_footer(answer, base)}"
    body = _answer_body(answer, base)
    if base is None or not answer.citations:
        return body
    return f"{body}\n\n{citations_footer(answer, base)}"


def _refusal_head(answer: Answer) -> str:
    """The refusal's sentence, and under it, when no compared source spoke, each source it read."""
    return "\n\n".join([f"⚠️ **{escape_markdown(answer.lead)}**"]
                       + [f"**{escape_markdown(column.heading)}** *— {escape_markdown(answer.silent_label)}*"
                          for column in answer.comparison])


def _answer_body(answer: Answer, base: str | None) -> str:
    def link(n: int, start: int | None = None, end: int | None = None) -> str:
        if base is None:
            return ""
        citation = next(c for c in answer.citations if c.n == n)
        return permalink(base, citation.doc_id, citation.start if start is None else start,
                         citation.end if end is None else end)

    if answer.abstained:
        head = _refusal_head(answer)
        if not answer.citations:
            return head
        numbers = " ".join(_marker(c.n, link(c.n)) for c in answer.citations)
        return f"{head}\n\n{escape_markdown(answer.closest_label.rstrip(':').rstrip())} : {numbers}"
    out = [f"*{escape_markdown(line)}*" for line in (answer.lead, answer.note) if line]
    if answer.source_line:
        out.append(f"*({escape_markdown(answer.source_line)})*")
    marks = wording(answer.language)  # the quote marks the answer was worded with
    opening, closing = marks["open"], marks["close"]
    if answer.comparison:
        for column in answer.comparison:
            out.append(f"**{escape_markdown(column.heading)}**")
            out += [_quote_markdown(answer.sentences[i], opening, closing, link) for i in column.quotes] \
                or [f"*— {escape_markdown(answer.silent_label)}*"]
        return "\n\n".join(out)
    headings = dict(answer.headings)
    current_doc = None
    for quoted in answer.sentences:
        if answer.grouped and quoted.doc_id != current_doc:
            current_doc = quoted.doc_id
            out.append(f"*{escape_markdown(headings.get(quoted.doc_id, ''))}*")
        out.append(_quote_markdown(quoted, opening, closing, link))
    return "\n\n".join(out)


def _quote_markdown(quoted: Quote, opening: str, closing: str, link: Callable[..., str]) -> str:
    """> « quote » [n], after the term it defines in bold when it is a definition."""
    term = f"**{escape_markdown(on_one_line(quoted.term))}** : " if quoted.term else ""
    return (f"> {term}{opening}{escape_markdown(on_one_line(quoted.text))}{closing} "
            + _marker(quoted.citation, link(quoted.citation, quoted.start, quoted.end)))


def _marked_passage(citation: Citation, answer: Answer) -> str:
    """The passage with the quoted sentences wrapped in <mark>, everything escaped."""
    spans = sorted((q.start - citation.start, q.end - citation.start) for q in answer.sentences
                   if q.citation == citation.n)
    out, cursor = [], 0
    for start, end in spans:
        if start < cursor or start < 0 or end > len(citation.passage):
            continue
        out.append(escape_html(citation.passage[cursor:start]))
        out.append(f'<mark class="rag-quote">{escape_html(citation.passage[start:end])}</mark>')
        cursor = end
    out.append(escape_html(citation.passage[cursor:]))
    return "".join(out)


def _focus_link(base: str, citation: Citation, answer: Answer) -> str:
    """The document view at the first quote of this citation, or at its passage."""
    quoted = [q for q in answer.sentences if q.citation == citation.n]
    start, end = (quoted[0].start, quoted[0].end) if quoted else (citation.start, citation.end)
    return permalink(base, citation.doc_id, start, end)


def _neighbours(index: IndexReader | None, citation: Citation) -> tuple[str, str, int]:
    if index is None:
        return "", "", 0
    ids = index.passage_ids_of(citation.doc_id)
    position = citation.position
    around = [ids[n] for n in (position - 1, position + 1) if 0 <= n < len(ids)]
    text = {p.passage_id: p.text for p in index.passages_by_id(around)}
    before = text.get(ids[position - 1], "") if 0 < position <= len(ids) else ""
    after = text.get(ids[position + 1], "") if position + 1 < len(ids) else ""
    return before, after, len(ids)


def comparison_html(answer: Answer) -> str:
    """One column per compared source: its title and year, its quotes, or that it is silent."""
    if not answer.comparison:
        return ""
    words = labels(answer.language)
    columns = [{"doc_id": column.doc_id, "title": column.title, "year": str(column.year) if column.year else words["no_year"],
                "quotes": [(answer.sentences[i].citation, on_one_line(answer.sentences[i].text)) for i in column.quotes]}
               for column in answer.comparison]
    return _render("comparison.html", words=words, columns=columns)


def document_html(index: IndexReader | None, doc_id: str, start: int | None = None, end: int | None = None,
                  language: str = "fr", window: int = 60_000) -> str:
    """The whole document (cleaned text as read), with the span `start:end` highlighted and
    scrolled to; very long documents are shown around the span. Everything escaped."""
    from markupsafe import Markup

    words = labels(language)
    if index is None or doc_id not in index.documents:
        return _render("document.html", missing=True, words=words)
    document = index.documents[doc_id]
    text = index.document_text(doc_id)
    bad_span = False
    if start is None or end is None or not (0 <= start < end <= len(text)):
        bad_span = start is not None or end is not None
        start = end = None
    ids = index.passage_ids_of(doc_id)
    position = ""
    if start is not None:
        inside = [p for p in index.passages_by_id(ids) if p.start <= start < p.end] if len(ids) <= 5000 else []
        position = f' · {words["passage"]} {inside[0].position + 1}/{len(ids)}' if inside else ""
    year = str(document.year) if document.year else words["no_year"]
    meta = f"{document.source} · {year}" + (
        f' · {words["position"]} {start}–{end} {words["of"]} {len(text)}{position}' if start is not None else "")
    lo, hi = (0, min(len(text), window)) if start is None else \
        (max(0, start - window // 2), min(len(text), end + window // 2))
    shown = ("…" if lo else "") + _shown_text(text, lo, hi, start, end, document.page_starts, words) \
        + ("…" if hi < len(text) else "")
    return _render("document.html", missing=False, words=words, doc_id=doc_id, language=document.language,
                   title=document.title, meta=meta, bad_span=bad_span, shown=Markup(shown))


def _shown_text(text: str, lo: int, hi: int, start: int | None, end: int | None, page_starts: tuple[int, ...],
                words: dict[str, str]) -> str:
    """`text[lo:hi]` escaped, the span `start:end` marked, and a rule where each page begins."""
    cuts: dict[int, list[str]] = {}
    for number, page_start in enumerate(page_starts, 1):
        if lo < page_start < hi or (page_start == lo and number > 1):
            cuts.setdefault(page_start, []).append(f'<span class="rag-page">{words["page"]} {number}</span>')
    if start is not None and end is not None:
        cuts.setdefault(start, []).append('<mark id="rag-focus" class="rag-quote">')
        cuts.setdefault(end, []).insert(0, "</mark>")
    out, cursor = [], lo
    for position in sorted(cuts):
        out.append(escape_html(text[cursor:position]) + "".join(cuts[position]))
        cursor = position
    return "".join(out) + escape_html(text[cursor:hi])


def conversation_markdown(turns: list[tuple[str, Answer]], base: str | None = None) -> str:
    """The conversation as a Markdown file: each question, its quotes and its citations written out."""
    out = ["# Questions aux documents — discussion", ""]
    for question, answer in turns:
        out += [f"## {escape_markdown(question)}", "", answer_markdown(answer, base if base is not None else ""), ""]
    return "\n".join(out).rstrip() + "\n"


def sources_html(answer: Answer | None, index: IndexReader | None = None, base: str = "") -> str:
    """The sources panel: one collapsible block per citation, the quoted words highlighted
    in their passage, between the passages before and after it in the document."""
    from markupsafe import Markup

    language = answer.language if answer else "fr"
    words = labels(language)
    if answer is None or not answer.citations:
        return _render("sources.html", citations=(), language=language, words=words)
    best = max((c.score for c in answer.citations), default=0.0)
    citations = []
    for citation in answer.citations:
        before, after, total = _neighbours(index, citation)
        meta: list[Any] = [visible(str(citation.year) if citation.year else words["no_year"]),
                           f'{words["passage"]} {citation.position + 1}' + (f"/{total}" if total else ""),
                           f'{words["chars"]} {citation.start}–{citation.end}']
        if citation.section and citation.section != citation.title:
            meta.insert(1, "§ " + visible(citation.section))
        if citation.page is not None:
            meta.insert(1, visible(page_label(citation, words)))
        if citation.kind == "definition":
            meta.insert(1, words["definition"])
        share = max(0.0, min(1.0, citation.score / best)) if best > 0 else 0.0
        citations.append({"n": citation.n, "title": citation.title, "meta": meta, "share": share,
                          "score": citation.score, "before": before[-300:],
                          "after": after[:300], "passage": Markup(_marked_passage(citation, answer)),
                          "document": citation.document, "link": _focus_link(base, citation, answer)})
    return _render("sources.html", citations=citations, language=language, words=words, question=answer.question,
                   kind="rag-closest" if answer.abstained else "rag-supporting", abstained=answer.abstained,
                   comparison=Markup(comparison_html(answer)))


def documents_html(index: IndexReader | None, statuses: list[tuple[str, str]] | None = None) -> str:
    """The indexed documents, and the files that were skipped with their reason."""
    if index is None:
        return _render("documents.html", ready=False)
    columns = ("title", "source", "year", "language", "kind", "passages", "sentences")
    rows = [[str(entry.get(key) if entry.get(key) is not None else "—") for key in columns]
            + [str(entry.get("indexed_at", "—")).replace("T", " ").rstrip("Z")]
            for entry in index.manifest.get("documents", [])]
    return _render("documents.html", ready=True, rows=rows, skipped=index.manifest.get("skipped", []),
                   statuses=statuses or [])
