"""Minimal PDFs with a text layer, written by hand (no PDF library is needed to make one)."""

from __future__ import annotations


def make_pdf_pages(pages: list[list[str]]) -> bytes:
    """A PDF of several pages, each a column of lines of ASCII text."""
    count = len(pages)
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>",
               b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(b"%d 0 R" % (4 + 2 * i) for i in range(count)),
                                                             count),
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    for number, lines in enumerate(pages):
        body = " ".join(f"72 {720 - 16 * row} Td ({line}) Tj 0 0 Td" if row == 0 else f"0 -16 Td ({line}) Tj"
                        for row, line in enumerate(lines))
        stream = f"BT /F1 12 Tf {body} ET".encode()
        objects.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %d 0 R "
                       b"/Resources << /Font << /F1 3 0 R >> >> >>" % (5 + 2 * number))
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    out, offsets = b"%PDF-1.4\n", []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return out


def make_pdf(text: str) -> bytes:
    """A one-page PDF whose text layer holds `text` (ASCII)."""
    return make_pdf_pages([[text]])
