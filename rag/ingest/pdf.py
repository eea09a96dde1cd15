"""Child-process entry point: print a PDF's text as JSON (`python -m rag.ingest.pdf FILE`).

Run by `files._read_pdf` under a time and memory limit, so that a hostile or
looping PDF kills this process, never the app.
"""

from __future__ import annotations

import json
import sys


def extract(path: str) -> dict[str, object]:
    from pypdf import PdfReader

    reader = PdfReader(path, strict=False)
    pages = [page.extract_text() or "" for page in reader.pages]
    title = ""
    try:
        title = str((reader.metadata or {}).get("/Title") or "")
    except Exception:  # broken metadata must not lose the text
        title = ""
    return {"title": title, "pages": pages}


if __name__ == "__main__":
    json.dump(extract(sys.argv[1]), sys.stdout, ensure_ascii=False)
