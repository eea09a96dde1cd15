"""HTML → plain text with one paragraph per block element; script and style never kept."""

from __future__ import annotations

import re

SKIPPED_TAGS = {"script", "style", "noscript", "template", "svg", "math", "iframe", "object", "embed",
                "head", "nav", "footer", "form", "button", "select", "textarea", "canvas"}
BLOCK_TAGS = {"p", "div", "section", "article", "main", "header", "aside", "blockquote", "pre", "li", "ul", "ol",
              "dl", "dt", "dd", "table", "tr", "td", "th", "h1", "h2", "h3", "h4", "h5", "h6", "br", "hr",
              "figure", "figcaption", "address", "details", "summary", "body", "html"}
_SPACES = re.compile(r"[ \t\r\f\v\u00a0]+")


def html_to_text(markup: str) -> tuple[str, str]:
    """Return (title, text). Entities are decoded; every block element starts a new line."""
    from selectolax.lexbor import LexborHTMLParser

    tree = LexborHTMLParser(markup)
    title_node = tree.css_first("title") or tree.css_first("h1")
    title = _SPACES.sub(" ", title_node.text(deep=True)).strip() if title_node else ""
    root = tree.body or tree.root
    pieces: list[str] = []
    # Explicit stack, not recursion: hostile HTML can nest thousands of levels deep.
    stack = [root] if root is not None else []
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            pieces.append(node)
            continue
        tag = node.tag or ""
        if tag == "-text":
            pieces.append(node.text_content or "")
            continue
        if tag in SKIPPED_TAGS or tag.startswith("-"):  # comments, doctype
            continue
        children = list(node.iter(include_text=True))
        if tag in BLOCK_TAGS:
            stack.append("\n")
        stack.extend(reversed(children))
        if tag in BLOCK_TAGS:
            stack.append("\n")
    lines = [_SPACES.sub(" ", line).strip() for line in "".join(pieces).split("\n")]
    body = "\n".join(line for line in lines if line)
    if title and not body.startswith(title):
        body = title + "\n" + body
    return title, body + "\n" if body else ""
