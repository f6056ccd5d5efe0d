"""The printed documents of a session: certificates of completion and sign-in sheets, as PDF.

Pure functions of their facts, no database: the caller gathers what is printed (and keeps it, for
a certificate, with the exact bytes issued). fpdf2 lays the pages out with Source Sans Pro
embedded (subset), so names such as "José Ñúñez", "Łukasz Wałęsa" or "Đặng" print as typed;
segno encodes the QR codes, drawn as vector squares so they stay sharp at any print size.
"""

from __future__ import annotations

import atexit
import io
import shutil
import tempfile
import threading
import unicodedata
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from pathlib import Path

import segno
from fontTools.ttLib import TTFont
from fpdf import FPDF
from fpdf.enums import XPos, YPos
from fpdf.fonts import FontFace, TTFFont

__all__ = [
    "CertificateFacts",
    "SheetFacts",
    "SheetRow",
    "certificate_pdf",
    "qr_png",
    "qr_svg",
    "sign_in_sheet",
]

FONT = "SourceSans"


@dataclass(frozen=True)
class SheetRow:
    """One confirmed registrant on a sign-in sheet."""

    name: str
    agency: str
    post_id: str
    post_state: str


@dataclass(frozen=True)
class SheetFacts:
    """What a meeting's sign-in sheet prints."""

    provider: str
    course_title: str
    session_title: str
    meeting_label: str  # "Day 1 of 2 · Tue 3 Nov 2026, 8:00 AM – 4:00 PM CST"
    venue: str
    instructors: list[str]
    checkin_url: str
    rows: list[SheetRow]


@dataclass(frozen=True)
class CertificateFacts:
    """What a certificate of completion prints (kept with it, as issued)."""

    name: str
    post_id: str
    post_state: str
    agency: str
    course_title: str
    course_number: str
    provider: str
    instructors: list[str]
    meeting_dates: list[str]
    credit_hours: str
    completed_on: str
    code: str
    verify_url: str


def certificate_pdf(facts: CertificateFacts) -> bytes:
    """One US Letter landscape page: who completed what, for how many hours, and how to check it."""
    pdf = _document(orientation="L", title=f"Certificate of completion: {facts.course_title}")
    pdf.set_author(_printable(facts.provider))
    pdf.add_page()
    width = pdf.w - pdf.l_margin - pdf.r_margin
    # A double rule around the page, the classic certificate frame.
    pdf.set_draw_color(40, 60, 110)
    pdf.set_line_width(1.2)
    pdf.rect(8, 8, pdf.w - 16, pdf.h - 16)
    pdf.set_line_width(0.3)
    pdf.rect(11, 11, pdf.w - 22, pdf.h - 22)

    pdf.set_y(22)
    _line(pdf, facts.provider, 14, width, style="B")
    pdf.ln(4)
    _line(pdf, "Certificate of Completion", 30, width, style="B", color=(40, 60, 110))
    pdf.ln(6)
    _line(pdf, "This certifies that", 13, width)
    pdf.ln(2)
    _line(pdf, facts.name, 28, width, style="B")
    identity = [
        f"Certification number {facts.post_id}" if facts.post_id else "",
        f"({facts.post_state})" if facts.post_id and facts.post_state else "",
    ]
    _line(pdf, " ".join(part for part in identity if part), 12, width)
    _line(pdf, facts.agency, 12, width)
    pdf.ln(4)
    _line(pdf, "has completed", 13, width)
    pdf.ln(1)
    _line(pdf, facts.course_title, 20, width, style="B")
    if facts.course_number:
        _line(pdf, f"Course number {facts.course_number}", 12, width)
    pdf.ln(3)
    _line(pdf, f"Credit hours: {facts.credit_hours}", 14, width, style="B")
    _line(pdf, "Dates: " + "; ".join(facts.meeting_dates), 11, width)
    if facts.instructors:
        label = "Instructor" if len(facts.instructors) == 1 else "Instructors"
        _line(pdf, f"{label}: " + ", ".join(facts.instructors), 11, width)
    _line(pdf, f"Completed on {facts.completed_on}", 11, width)

    # Bottom left: the code and where to check it; bottom right: the same URL as a QR code.
    size = 32.0
    qr_x, qr_y = pdf.w - pdf.r_margin - size - 4, pdf.h - 18 - size
    _draw_qr(pdf, facts.verify_url, qr_x, qr_y, size)
    pdf.set_xy(pdf.l_margin + 4, pdf.h - 18 - 16)
    pdf.set_font(FONT, "B", 12)
    pdf.cell(
        0, 6, _printable(f"Verification code: {facts.code}"), new_x=XPos.LMARGIN, new_y=YPos.NEXT
    )
    pdf.set_x(pdf.l_margin + 4)
    pdf.set_font(FONT, "", 10)
    pdf.cell(
        qr_x - pdf.l_margin - 8,
        5,
        _printable(f"Check this certificate at {facts.verify_url}"),
        new_x=XPos.LMARGIN,
        new_y=YPos.NEXT,
    )
    return bytes(pdf.output())


def sign_in_sheet(facts: SheetFacts) -> bytes:
    """US Letter portrait pages: the meeting's header and QR code, then one row per registrant
    with a signature box; the table's heading repeats on every page."""
    pdf = _document(orientation="P", title=f"Sign-in sheet: {facts.course_title}")
    pdf.set_author(_printable(facts.provider))
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    size = 30.0
    text_width = pdf.w - pdf.l_margin - pdf.r_margin - size - 6
    top = pdf.get_y()
    _draw_qr(pdf, facts.checkin_url, pdf.w - pdf.r_margin - size, top, size)
    pdf.set_font(FONT, "", 10)
    pdf.set_xy(pdf.w - pdf.r_margin - size - 10, top + size + 1)
    pdf.cell(size + 10, 4, "Scan to check in", align="C")

    pdf.set_xy(pdf.l_margin, top)
    _left(pdf, facts.provider, 10, text_width)
    _left(pdf, "Sign-in sheet", 18, text_width, style="B")
    _left(pdf, facts.course_title, 14, text_width, style="B")
    if facts.session_title and facts.session_title != facts.course_title:
        _left(pdf, facts.session_title, 11, text_width)
    _left(pdf, facts.meeting_label, 11, text_width)
    if facts.venue:
        _left(pdf, facts.venue, 10, text_width)
    if facts.instructors:
        label = "Instructor" if len(facts.instructors) == 1 else "Instructors"
        _left(pdf, f"{label}: " + ", ".join(facts.instructors), 10, text_width)
    pdf.set_font(FONT, "", 8)
    pdf.set_x(pdf.l_margin)
    pdf.multi_cell(text_width, 4, _printable(f"Check-in link: {facts.checkin_url}"))
    pdf.set_y(max(pdf.get_y(), top + size + 6) + 4)

    pdf.set_font(FONT, "", 10)
    with pdf.table(
        col_widths=(8, 52, 50, 34, 56),
        line_height=9,
        text_align=("RIGHT", "LEFT", "LEFT", "LEFT", "LEFT"),
        headings_style=FontFace(emphasis="BOLD", fill_color=(225, 230, 240)),
        repeat_headings=1,
        first_row_as_headings=True,
    ) as table:
        heading = table.row()
        for text in ("#", "Name", "Agency", "Certification no.", "Signature"):
            heading.cell(text)
        for number, person in enumerate(facts.rows, start=1):
            certification = " ".join(p for p in (person.post_id, person.post_state) if p)
            row = table.row()
            row.cell(str(number))
            row.cell(_printable(person.name))
            row.cell(_printable(person.agency))
            row.cell(_printable(certification))
            row.cell("")
    if not facts.rows:
        pdf.ln(4)
        pdf.cell(0, 6, "Nobody is confirmed for this meeting.")
    return bytes(pdf.output())


def qr_png(data: str, *, scale: int = 8) -> bytes:
    """``data`` as a QR code PNG (error correction M, a four-module quiet zone), for screens."""
    out = io.BytesIO()
    segno.make(data, error="m", micro=False).save(out, kind="png", scale=scale, border=4)
    return out.getvalue()


def qr_svg(data: str, *, title: str = "QR code") -> str:
    """``data`` as an inline-able SVG QR code with an accessible ``<title>``."""
    out = io.BytesIO()
    segno.make(data, error="m", micro=False).save(
        out, kind="svg", scale=4, border=4, xmldecl=False, svgns=True, title=title, svgclass=None
    )
    return out.getvalue().decode("utf-8")


# -- layout helpers ---------------------------------------------------------------------------


def _font_path(style: str) -> Path:
    """The embedded face of ``style`` ("" or "B"), as shipped by the font package."""
    name = "SourceSansPro-Bold.ttf" if style == "B" else "SourceSansPro-Regular.ttf"
    return Path(str(files("font_source_sans_pro") / "files" / name))


# OpenType layout and legacy kerning tables: fpdf2 (without text shaping) neither reads nor
# embeds them, yet loading and subsetting the font parses them for every document.
_UNUSED_TABLES = ("GSUB", "GPOS", "GDEF", "kern", "hdmx", "FFTM", "DSIG")


_FONTS_LOCK = threading.Lock()


def _lean_fonts() -> dict[str, Path]:
    # Certificates render in worker threads: the first two must not both write the fonts.
    with _FONTS_LOCK:
        return _write_lean_fonts()


@cache
def _write_lean_fonts() -> dict[str, Path]:
    """The two faces without the tables fpdf2 drops anyway, written once per process.

    This more than halves the time of a certificate (font loading and subsetting are most of
    it), which matters when a 500-person session is finalized in one transaction. The files
    are the shipped fonts minus unused tables, in a private temporary folder removed at exit.
    """
    folder = Path(tempfile.mkdtemp(prefix="scheduler-fonts-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    lean = {}
    for style in ("", "B"):
        font = TTFont(str(_font_path(style)))
        for tag in _UNUSED_TABLES:
            if tag in font:
                del font[tag]
        lean[style] = folder / f"face{style or 'R'}.ttf"
        font.save(str(lean[style]))
        font.close()
    return lean


@cache
def _covered() -> frozenset[int]:
    """The code points the embedded font has glyphs for (both styles share one repertoire)."""
    font = TTFont(str(_font_path("")), lazy=True)
    try:
        return frozenset(font.getBestCmap())
    finally:
        font.close()


def _printable(text: str) -> str:
    """``text`` on one line in composed form, with anything the font cannot draw as ``?``.

    Decomposed accents (``e`` + U+0301) become the composed letters the font has; control
    characters, which a name from a form should never carry, become spaces.
    """
    composed = unicodedata.normalize("NFC", text)
    covered = _covered()
    out = []
    for char in composed:
        if unicodedata.category(char)[0] == "C" or char in "\u2028\u2029":
            out.append(" ")
        elif ord(char) in covered or char == " ":
            out.append(char)
        else:
            out.append("?")
    return " ".join("".join(out).split())


def _document(*, orientation: str, title: str) -> FPDF:
    pdf = FPDF(orientation=orientation, unit="mm", format="Letter")
    pdf.set_title(_printable(title))
    pdf.set_creator("Training session scheduler")
    for style, path in _lean_fonts().items():
        pdf.add_font(FONT, style, path)
    for font in pdf.fonts.values():
        if not isinstance(font, TTFFont):
            continue
        # The subset keeps the face's own bounding box: recomputing it from every glyph's
        # outline on save was a third of the time of a document, for a value nothing reads.
        font.ttfont.recalcBBoxes = False
    pdf.set_margins(16, 14, 16)
    pdf.set_auto_page_break(auto=False)
    return pdf


def _line(
    pdf: FPDF,
    text: str,
    size: float,
    width: float,
    *,
    style: str = "",
    color: tuple[int, int, int] = (0, 0, 0),
) -> None:
    """A centred paragraph, wrapped when it is too long for one line."""
    if not text:
        return
    pdf.set_font(FONT, style, size)
    pdf.set_text_color(*color)
    pdf.set_x(pdf.l_margin)
    pdf.multi_cell(width, size * 0.5, _printable(text), align="C")
    pdf.set_text_color(0, 0, 0)


def _left(pdf: FPDF, text: str, size: float, width: float, *, style: str = "") -> None:
    pdf.set_font(FONT, style, size)
    pdf.set_x(pdf.l_margin)
    pdf.multi_cell(width, size * 0.5, _printable(text), align="L")


def _draw_qr(pdf: FPDF, data: str, x: float, y: float, size: float) -> None:
    """``data`` as a QR code of ``size`` mm at (x, y), quiet zone included, in vector squares.

    Each row's runs of dark modules are one rectangle, so a code is a few hundred drawing
    operations rather than a thousand.
    """
    qr = segno.make(data, error="m", micro=False)
    border = 4
    modules = len(qr.matrix) + 2 * border
    step = size / modules
    pdf.set_fill_color(255, 255, 255)
    pdf.rect(x, y, size, size, style="F")
    pdf.set_fill_color(0, 0, 0)
    for r, row in enumerate(qr.matrix):
        c = 0
        while c < len(row):
            if not row[c]:
                c += 1
                continue
            start = c
            while c < len(row) and row[c]:
                c += 1
            pdf.rect(
                x + (start + border) * step,
                y + (r + border) * step,
                (c - start) * step,
                step,
                style="F",
            )
