"""The floor of the certificate benchmark: fpdf2 and segno rendering the same certificates,
written without the service's code.

Each certificate is its own FPDF document: two embedded faces, the same lines of text, the
verification URL as a QR code drawn in vector squares. The fonts are given as files: the
faces the service embeds (``lean``) for the floor, or the shipped ones for the old floor.
"""

from __future__ import annotations

from pathlib import Path

import segno
from fpdf import FPDF


def render(lines: list[tuple[str, str, float]], url: str, fonts: dict[str, Path]) -> bytes:
    """``lines`` of (text, style, size), centred, and ``url`` as a QR code; the PDF bytes."""
    pdf = FPDF(orientation="L", unit="mm", format="Letter")
    for style, path in fonts.items():
        pdf.add_font("Face", style, path)
    pdf.set_auto_page_break(auto=False)
    pdf.add_page()
    pdf.set_y(22)
    for text, style, size in lines:
        pdf.set_font("Face", style, size)
        pdf.multi_cell(0, size * 0.5, text, align="C")
    qr = segno.make(url, error="m")
    step = 32 / (len(qr.matrix) + 8)
    x0, y0 = pdf.w - 52, pdf.h - 50
    for r, row in enumerate(qr.matrix):
        for c, dark in enumerate(row):
            if dark:
                pdf.rect(x0 + (c + 4) * step, y0 + (r + 4) * step, step, step, style="F")
    return bytes(pdf.output())
