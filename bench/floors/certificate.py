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
from fpdf.enums import XPos, YPos
from fpdf.fonts import TTFFont


def render(
    lines: list[tuple[str, str, float]], url: str, fonts: dict[str, Path], *, tuned: bool = True
) -> bytes:
    """``lines`` of (text, style, size), centred, and ``url`` as a QR code; the PDF bytes.

    ``tuned`` skips recomputing the subset's bounding boxes on save (fpdf2's font objects
    expose the fontTools font), the cheapest correct setting; the old floor leaves it on.
    """
    pdf = FPDF(orientation="L", unit="mm", format="Letter")
    for style, path in fonts.items():
        pdf.add_font("Face", style, path)
    if tuned:
        for font in pdf.fonts.values():
            if isinstance(font, TTFFont):
                font.ttfont.recalcBBoxes = False
    pdf.set_auto_page_break(auto=False)
    pdf.add_page()
    pdf.set_y(22)
    for text, style, size in lines:
        pdf.set_font("Face", style, size)
        pdf.multi_cell(0, size * 0.5, text, align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    qr = segno.make(url, error="m")
    step = 32 / (len(qr.matrix) + 8)
    x0, y0 = pdf.w - 52, pdf.h - 50
    for r, row in enumerate(qr.matrix):
        c = 0
        while c < len(row):  # one rectangle per run of dark modules
            start = c
            while c < len(row) and row[c]:
                c += 1
            if c > start:
                pdf.rect(
                    x0 + (start + 4) * step,
                    y0 + (r + 4) * step,
                    (c - start) * step,
                    step,
                    style="F",
                )
            else:
                c += 1
    return bytes(pdf.output())
