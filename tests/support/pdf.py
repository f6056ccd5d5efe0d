"""Independent readers for the PDFs we issue: pypdf for the text, PDFium + zxing-cpp for QR codes.

Neither shares code with fpdf2 or segno, which write them: the text is what a PDF reader
extracts and the QR codes are decoded from the rendered page, as a phone camera would see it.
"""

from __future__ import annotations

import io

import pypdfium2
import zxingcpp
from pypdf import PdfReader


def pdf_pages(data: bytes) -> int:
    return len(PdfReader(io.BytesIO(data)).pages)


def pdf_text(data: bytes) -> str:
    """The extracted text of every page, pages joined by newlines."""
    reader = PdfReader(io.BytesIO(data))
    return "\n".join(page.extract_text() or "" for page in reader.pages)


def pdf_qr_codes(data: bytes, *, page: int = 0, scale: float = 2.0) -> list[str]:
    """The QR codes found on ``page`` rendered at ``scale`` × 72 dpi, as decoded text."""
    document = pypdfium2.PdfDocument(data)
    try:
        image = document[page].render(scale=scale).to_pil()
    finally:
        document.close()
    return [
        found.text
        for found in zxingcpp.read_barcodes(image)
        if found.format == zxingcpp.BarcodeFormat.QRCode
    ]


def png_qr_codes(data: bytes) -> list[str]:
    """The QR codes in a PNG image."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        return [found.text for found in zxingcpp.read_barcodes(image.convert("L"))]
