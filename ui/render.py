"""Answers and sources as safe HTML/Markdown for the browser (pure functions).

Documents may contain HTML, Markdown, image beacons or bidirectional tricks, so
every piece of document text is escaped here, on the server, before any
browser-side sanitizer sees it: HTML special characters become entities,
Markdown punctuation is backslash-escaped (no link, image or emphasis can
form), and invisible or direction-changing characters are shown as visible
codes instead of acting on the page.
"""

from __future__ import annotations

import html
import re

from rag.index.store import IndexReader
from rag.records import Answer, Citation

INVISIBLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff\u00ad]")
MARKDOWN_PUNCTUATION = re.compile(r"([\\`*_{}\[\]()#+\-.!|~:])")

LABELS = {
    "fr": {"sources": "Sources", "closest": "Passages les plus proches — ils ne répondent pas à la question",
           "passage": "passage", "chars": "car.", "score": "score", "document": "Document",
           "quoted": "phrases citées surlignées", "no_year": "année non précisée", "definition": "définition",
           "empty": "Les sources de la réponse s'afficheront ici.", "see": "voir les sources"},
    "en": {"sources": "Sources", "closest": "Closest passages — they do not answer the question",
           "passage": "passage", "chars": "chars", "score": "score", "document": "Document",
           "quoted": "quoted sentences highlighted", "no_year": "year not stated", "definition": "definition",
           "empty": "The sources of the answer will appear here.", "see": "see sources"},
}


def labels(language: str) -> dict[str, str]:
    return LABELS.get(language, LABELS["fr"])


def visible(text: str) -> str:
    """Invisible and direction-changing characters shown as <U+XXXX> codes."""
    return INVISIBLE.sub(lambda m: f"<U+{ord(m.group()):04X}>", text)


def escape_html(text: str) -> str:
    return html.escape(visible(text), quote=True)


def escape_markdown(text: str) -> str:
    """Text that renders as itself in Markdown with HTML: no tag, link, image or emphasis can form."""
    flat = " ".join(visible(text).split())
    # Backslashes first, entities second: an entity's "#" must not be escaped into text.
    return html.escape(MARKDOWN_PUNCTUATION.sub(r"\\\1", flat), quote=False)


def answer_markdown(answer: Answer) -> str:
    """The chat bubble, from the answer's records: its words, the quotes escaped, inline [n] markers."""
    if answer.message:
        return escape_markdown(answer.message)
    if answer.abstained:
        head = f"⚠️ **{escape_markdown(answer.lead)}**"
        if not answer.citations:
            return head
        numbers = " ".join(f"**\\[{c.n}\\]**" for c in answer.citations)
        return f"{head}\n\n{escape_markdown(answer.closest_label.rstrip(':').rstrip())} : {numbers}"
    out = [f"*{escape_markdown(line)}*" for line in (answer.lead, answer.note) if line]
    if answer.source_line:
        out.append(f"*({escape_markdown(answer.source_line)})*")
    opening, closing = ("« ", " »") if answer.language == "fr" else ("“", "”")
    if answer.comparison:
        for column in answer.comparison:
            out.append(f"**{escape_markdown(column.heading)}**")
            out += [f"> {opening}{escape_markdown(answer.sentences[i].text)}{closing} "
                    f"**\\[{answer.sentences[i].citation}\\]**" for i in column.quotes] \
                or [f"*— {escape_markdown(answer.silent_label)}*"]
        return "\n\n".join(out)
    headings = dict(answer.headings)
    current_doc = None
    for quote in answer.sentences:
        if answer.grouped and quote.doc_id != current_doc:
            current_doc = quote.doc_id
            out.append(f"*{escape_markdown(headings.get(quote.doc_id, ''))}*")
        out.append(f"> {opening}{escape_markdown(quote.text)}{closing} **\\[{quote.citation}\\]**")
    return "\n\n".join(out)


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


def sources_html(answer: Answer | None, index: IndexReader | None = None) -> str:
    """The sources panel: one collapsible block per citation, the quoted words highlighted
    in their passage, between the passages before and after it in the document."""
    language = answer.language if answer else "fr"
    words = labels(language)
    if answer is None or not answer.citations:
        return f'<div class="rag-sources rag-empty" lang="{language}"><p>{escape_html(words["empty"])}</p></div>'
    kind = "rag-closest" if answer.abstained else "rag-supporting"
    parts = [f'<div class="rag-sources {kind}" lang="{language}">',
             f'<h3>{escape_html(words["closest"] if answer.abstained else words["sources"])}</h3>']
    for citation in answer.citations:
        before, after, total = _neighbours(index, citation)
        meta = [escape_html(str(citation.year) if citation.year else words["no_year"]),
                f'{words["passage"]} {citation.position + 1}' + (f"/{total}" if total else ""),
                f'{words["chars"]} {citation.start}–{citation.end}',
                f'{words["score"]} {citation.score:.3f}']
        if citation.section and citation.section != citation.title:
            meta.insert(1, "§ " + escape_html(citation.section))
        if citation.kind == "definition":
            meta.insert(1, escape_html(words["definition"]))
        opened = " open" if citation.n == 1 else ""
        parts.append(
            f'<details class="rag-source" id="rag-cite-{citation.n}" data-n="{citation.n}"{opened}>'
            f'<summary><span class="rag-n">[{citation.n}]</span> <b>{escape_html(citation.title)}</b>'
            f' <span class="rag-meta">· {" · ".join(meta)}</span></summary>'
            f'<div class="rag-context">'
            + (f'<p class="rag-around">… {escape_html(before[-300:])}</p>' if before else "")
            + f'<p class="rag-passage">{_marked_passage(citation, answer)}</p>'
            + (f'<p class="rag-around">{escape_html(after[:300])} …</p>' if after else "")
            + f'<p class="rag-doc">{escape_html(words["document"])} : {escape_html(citation.document)}</p>'
            '</div></details>'
        )
    parts.append("</div>")
    return "".join(parts)


def documents_html(index: IndexReader | None, statuses: list[tuple[str, str]] | None = None) -> str:
    """The indexed documents, and the files that were skipped with their reason."""
    if index is None:
        return "<p>Index en cours de préparation… (index being prepared)</p>"
    rows = []
    for entry in index.manifest.get("documents", []):
        rows.append("<tr>" + "".join(f"<td>{escape_html(str(entry.get(key) if entry.get(key) is not None else '—'))}</td>"
                                     for key in ("title", "source", "year", "language", "kind", "passages", "sentences"))
                    + "</tr>")
    table = ('<table class="rag-docs"><thead><tr><th>Titre</th><th>Fichier</th><th>Année</th><th>Langue</th>'
             '<th>Format</th><th>Passages</th><th>Phrases</th></tr></thead><tbody>' + "".join(rows) + "</tbody></table>")
    skipped = index.manifest.get("skipped", [])
    extra = ""
    if skipped:
        extra = "<h4>Fichiers ignorés (skipped)</h4><ul>" + "".join(
            f"<li><code>{escape_html(s['source'])}</code> : {escape_html(s['reason'])}</li>" for s in skipped) + "</ul>"
    if statuses:
        extra += "<h4>Dernier ajout (last upload)</h4><ul>" + "".join(
            f"<li><code>{escape_html(name)}</code> : {escape_html(status)}</li>" for name, status in statuses) + "</ul>"
    return table + extra
