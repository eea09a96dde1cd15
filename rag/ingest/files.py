"""Read a documents folder: find files, detect their real format, decode their text.

Formats are detected by content, not by extension: a PDF named `.txt` is read
as a PDF, a binary named `.md` is skipped. Text is decoded as UTF-8 when it is
(UTF-16 with a BOM, else charset detection), with newlines translated the way
`open(path, encoding="utf-8")` does, so for a UTF-8 `.txt` file the document's
text is exactly what Python reads. PDF parsing runs in a child process with a
time and memory limit: a hostile PDF cannot hang or exhaust the app.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from collections.abc import Sequence
from pathlib import Path

from ..errors import IngestError
from ..records import Skipped

SUPPORTED_SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm", ".pdf")
MAX_FILE_BYTES = 20 * 1024 * 1024
MAX_FILES = 2000
PDF_TIMEOUT_S = 30
PDF_MEMORY_BYTES = 1024 * 1024 * 1024


@dataclass(frozen=True)
class RawText:
    """A file's extracted text, before cleaning."""

    source: str  # path relative to the documents folder, with forward slashes
    kind: str  # "text", "markdown", "html" or "pdf"
    text: str
    sha256: str  # of the file's bytes
    title_hint: str = ""
    page_starts: tuple[int, ...] = ()


def discover(docs_dir: Path, max_files: int = MAX_FILES) -> tuple[list[Path], list[Skipped]]:
    """List the candidate files under `docs_dir`, sorted, without reading them.

    Hidden files and folders (a name starting with a dot) are not read, and said so
    once each; links that lead outside the folder are skipped with a reason. Raises IngestError when the folder is missing or holds
    more than `max_files` candidates (refused before anything is read).
    """
    if not docs_dir.is_dir():
        raise IngestError(f"The documents folder {docs_dir} does not exist. Create it or set RAG_DOCS_DIR / --docs.")
    root = docs_dir.resolve()
    found: list[Path] = []
    skipped: list[Skipped] = []
    for folder, subdirs, files in os.walk(docs_dir, followlinks=False):
        for hidden in sorted(d for d in subdirs if d.startswith(".")):
            relative = (Path(folder) / hidden).relative_to(docs_dir).as_posix()
            skipped.append(Skipped(relative + "/", "a hidden folder (its name starts with a dot): not read"))
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
        for name in sorted(files):
            path = Path(folder) / name
            relative = path.relative_to(docs_dir).as_posix()
            if name.startswith("."):
                skipped.append(Skipped(relative, "a hidden file (its name starts with a dot): not read"))
                continue
            if path.is_symlink():
                target = path.resolve()
                if not target.is_relative_to(root):
                    skipped.append(Skipped(relative, "a link that leads outside the documents folder"))
                    continue
            if path.suffix.lower() not in SUPPORTED_SUFFIXES:
                skipped.append(Skipped(relative, f"unsupported file type {path.suffix or '(none)'}; "
                                                 f"supported: {', '.join(SUPPORTED_SUFFIXES)}"))
                continue
            found.append(path)
            if len(found) > max_files:
                raise IngestError(
                    f"{docs_dir} holds more than {max_files} documents; index a smaller folder "
                    "or raise the limit with RAG_MAX_FILES."
                )
    return found, skipped


def translate_newlines(text: str) -> str:
    """Universal newlines, as `open()` in text mode applies them."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def utf16_without_bom(data: bytes) -> str | None:
    """The text of UTF-16 written without a byte-order mark (some Windows tools do), else None.

    Text in a Latin script has a zero high byte in most of its code units: zeros at odd offsets
    (little-endian) or even ones (big-endian), almost none at the other. The guess stands only if
    the whole file decodes and reads as printable text."""
    sample = data[:8192]
    half = len(sample) // 2
    if half < 2:
        return None
    even, odd = sample[0 : 2 * half : 2].count(0), sample[1 : 2 * half : 2].count(0)
    encoding = "utf-16-le" if odd > half * 0.3 and even <= half * 0.02 else \
        "utf-16-be" if even > half * 0.3 and odd <= half * 0.02 else None
    if encoding is None or len(data) % 2:
        return None
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError:
        return None
    head = text[:4096]
    return text if sum(ch.isprintable() or ch in "\t\r\n\f" for ch in head) >= 0.95 * len(head) else None


def decode_bytes(data: bytes) -> str:
    """Bytes → str: UTF-16 with BOM (or without, recognized), else UTF-8, else the encoding
    charset-normalizer detects."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    if b"\x00" in data[:8192]:
        text = utf16_without_bom(data)
        if text is not None:
            return text
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is not None and best.encoding:
        return str(best)
    return data.decode("latin-1")


def looks_binary(data: bytes) -> bool:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")) or (b"\x00" in data[:8192] and utf16_without_bom(data) is not None):
        return False
    sample = data[:8192]
    if b"\x00" in sample:
        return True
    control = sum(1 for byte in sample if byte < 32 and byte not in (9, 10, 12, 13))
    return control > len(sample) * 0.05


def sniff_kind(path: Path, text_head: str) -> str:
    """"html", "markdown" or "text" (PDFs are recognized from their bytes before decoding)."""
    lowered = text_head.lstrip("\ufeff \t\r\n").lower()
    if lowered.startswith(("<!doctype html", "<html", "<?xml")) or (
        path.suffix.lower() in (".html", ".htm") and "<" in lowered[:1024]
    ):
        return "html"
    if path.suffix.lower() in (".md", ".markdown"):
        return "markdown"
    return "text"


def read_file(path: Path, docs_dir: Path, max_bytes: int = MAX_FILE_BYTES) -> RawText | Skipped:
    """Extract the text of one file, or say why it was skipped. Never raises for a bad file."""
    source = path.relative_to(docs_dir).as_posix()
    try:
        size = path.stat().st_size
        if size > max_bytes:
            return Skipped(source, f"larger than the limit of {max_bytes // (1024 * 1024)} MB ({size} bytes); "
                                   "raise RAG_MAX_FILE_MB to index it")
        if size == 0:
            return Skipped(source, "empty file")
        data = path.read_bytes()
    except OSError as exc:
        return Skipped(source, f"cannot be read: {exc.strerror or exc}")
    digest = hashlib.sha256(data).hexdigest()
    if data.startswith(b"%PDF-"):
        return _read_pdf(path, source, digest)
    if looks_binary(data):
        return Skipped(source, "binary content, not text, HTML or PDF")
    text = translate_newlines(decode_bytes(data))
    kind = sniff_kind(path, text[:4096])
    if kind == "html":
        from .html import html_to_text

        title, body = html_to_text(text)
        return _non_empty(RawText(source, "html", body, digest, title_hint=title))
    return _non_empty(RawText(source, kind, text, digest))


def _non_empty(raw: RawText) -> RawText | Skipped:
    if not any(ch.isalnum() for ch in raw.text):
        return Skipped(raw.source, f"no extractable text ({raw.kind})")
    return raw


def _limit_child_memory() -> None:  # runs in the PDF child, before exec
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (PDF_MEMORY_BYTES, PDF_MEMORY_BYTES))


def _read_pdf(path: Path, source: str, digest: str) -> RawText | Skipped:
    try:
        done = subprocess.run(
            [sys.executable, "-m", "rag.ingest.pdf", str(path)],
            capture_output=True, timeout=PDF_TIMEOUT_S, preexec_fn=_limit_child_memory, check=False,
        )
    except subprocess.TimeoutExpired:
        return Skipped(source, f"PDF parsing took longer than {PDF_TIMEOUT_S} s and was stopped")
    if done.returncode != 0:
        return Skipped(source, "unreadable PDF (the parser failed or ran out of memory)")
    try:
        result = json.loads(done.stdout)
    except ValueError:
        return Skipped(source, "unreadable PDF (no parser output)")
    pages = [translate_newlines(p).strip("\n") for p in result.get("pages", [])]
    text, starts = "", []
    for page in pages:
        starts.append(len(text))
        text += page + "\n\n"
    raw = RawText(source, "pdf", text.rstrip("\n") + "\n", digest, title_hint=result.get("title") or "",
                  page_starts=tuple(starts))
    if not any(ch.isalnum() for ch in raw.text):
        return Skipped(source, "no extractable text (a scanned PDF without a text layer?)")
    return raw


def document_path(docs_dir: Path, source: str) -> Path:
    """The file a document's name (as citations give it: relative, forward slashes) stands for.

    Raises IngestError for a name that leads outside the folder or names no file of it."""
    relative = Path(source.replace("\\", "/"))
    root = docs_dir.resolve()
    path = (docs_dir / relative)
    if relative.is_absolute() or ".." in relative.parts or not path.resolve().is_relative_to(root):
        raise IngestError(f"{source!r} is not a name inside the documents folder {docs_dir}")
    if not path.is_file():
        raise IngestError(f"{source} is not a document of {docs_dir}; the names are those citations give "
                          "(the Documents tab lists them)")
    return path


def replace_file(docs_dir: Path, source: str, new_file: Path, max_bytes: int = MAX_FILE_BYTES) -> None:
    """Put `new_file`'s content in place of the document `source`, in one rename, after checking that
    it reads: a replacement that is empty, binary or text-less is refused and the old file kept."""
    target = document_path(docs_dir, source)
    staged = target.with_name(f".replacing-{os.getpid()}-{target.name}")
    try:
        shutil.copyfile(new_file, staged)
        result = read_file(staged, docs_dir, max_bytes)
        if isinstance(result, Skipped):
            raise IngestError(f"the new {target.name} cannot be indexed ({result.reason}); the old one is kept")
        os.replace(staged, target)
    finally:
        staged.unlink(missing_ok=True)


@dataclass(frozen=True)
class Placed:
    """One file given to a collection: the name it is stored under (relative to its folder), or why
    it was refused."""

    name: str
    refused: str = ""  # "format": a kind of file the collection does not read


def safe_name(name: str) -> str:
    """A plain file name: no folders, no dots in front, only ordinary characters."""
    base = os.path.basename(name.replace("\\", "/"))
    base = re.sub(r"[^\w.\- ]", "_", base).strip(" .") or "document"
    return base[:120]


def add_files(folder: Path, files: Sequence[tuple[Path, str]]) -> list[Placed]:
    """Copy each (file, the name it was given) into `folder` under a plain name no file there has
    (`safe_name`, then "-1", "-2"…). A kind of file that is not read is refused, and nothing copied."""
    folder.mkdir(parents=True, exist_ok=True)
    placed = []
    for source, given in files:
        name = safe_name(given)
        if Path(name).suffix.lower() not in SUPPORTED_SUFFIXES:
            placed.append(Placed(name, "format"))
            continue
        target = folder / name
        stem, suffix, n = target.stem, target.suffix, 1
        while target.exists():
            target, n = folder / f"{stem}-{n}{suffix}", n + 1
        shutil.copyfile(source, target)
        placed.append(Placed(target.name))
    return placed

