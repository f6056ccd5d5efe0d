"""Certificates and sign-in sheets, read back by independent readers (pypdf, PDFium, zxing-cpp)."""

from __future__ import annotations

import unicodedata

from scheduler.documents import (
    CertificateFacts,
    SheetFacts,
    SheetRow,
    certificate_pdf,
    qr_png,
    qr_svg,
    sign_in_sheet,
)
from tests.support.pdf import pdf_pages, pdf_qr_codes, pdf_text, png_qr_codes

VERIFY = "http://127.0.0.1:8000/verify/7K3M-Q9XA-2BCD-EF4G"
CHECKIN = "http://127.0.0.1:8000/checkin/pY0v4c7Qxj3nU1bHn5aRk2mD"


def facts(**changes: object) -> CertificateFacts:
    base: dict[str, object] = {
        "name": "José Ñúñez",
        "post_id": "DPSST-40112",
        "post_state": "OR",
        "agency": "Portland Police Bureau",
        "course_title": "Managing Bias: Policing in Practice",
        "course_number": "MB-101",
        "provider": "National De-escalation Training Network",
        "instructors": ["Dana Cruz", "Łukasz Wałęsa"],
        "meeting_dates": ["Tue 3 Nov 2026", "Wed 4 Nov 2026"],
        "credit_hours": "16",
        "completed_on": "4 November 2026",
        "code": "7K3M-Q9XA-2BCD-EF4G",
        "verify_url": VERIFY,
    }
    base.update(changes)
    return CertificateFacts(**base)  # type: ignore[arg-type]


def test_certificate_text_reads_back_with_accents_and_every_fact() -> None:
    data = certificate_pdf(facts())
    assert data.startswith(b"%PDF-")
    assert pdf_pages(data) == 1
    text = pdf_text(data)
    for expected in (
        "José Ñúñez",
        "DPSST-40112",
        "(OR)",
        "Portland Police Bureau",
        "Managing Bias: Policing in Practice",
        "MB-101",
        "National De-escalation Training Network",
        "Dana Cruz, Łukasz Wałęsa",
        "Tue 3 Nov 2026; Wed 4 Nov 2026",
        "Credit hours: 16",
        "Completed on 4 November 2026",
        "7K3M-Q9XA-2BCD-EF4G",
        VERIFY,
    ):
        assert expected in text, expected


def test_certificate_qr_decodes_to_the_verification_url() -> None:
    assert pdf_qr_codes(certificate_pdf(facts())) == [VERIFY]


def test_certificate_of_decomposed_and_other_scripts() -> None:
    # A name typed with combining accents prints composed; Greek, Cyrillic and Vietnamese too.
    decomposed = unicodedata.normalize("NFD", "Zoë Ðặng")
    text = pdf_text(certificate_pdf(facts(name=decomposed, agency="Δήμος Αθηναίων / Иванов")))
    assert "Zoë Ðặng" in text
    assert "Δήμος Αθηναίων / Иванов" in text


def test_certificate_without_optional_facts() -> None:
    text = pdf_text(
        certificate_pdf(facts(post_id="", post_state="", course_number="", instructors=[]))
    )
    assert "Certification number" not in text
    assert "Course number" not in text
    assert "Instructor" not in text
    assert "José Ñúñez" in text


def test_control_characters_never_reach_the_page() -> None:
    text = pdf_text(certificate_pdf(facts(name="Sam\r\nRivera\x00", agency="Albany\tPD")))
    assert "Sam Rivera" in text
    assert "Albany PD" in text


def test_a_character_the_font_lacks_prints_as_a_question_mark() -> None:
    text = pdf_text(certificate_pdf(facts(name="Li 李")))
    assert "Li ?" in text


def sheet(rows: int) -> SheetFacts:
    return SheetFacts(
        provider="National De-escalation Training Network",
        course_title="Managing Bias",
        session_title="Managing Bias — Chicago",
        meeting_label="Day 1 of 2 · Tue 3 Nov 2026, 8:00 AM – 4:00 PM CST",
        venue="Metro Training Center, Room 204, 1 Main St, Chicago, IL",
        instructors=["Dana Cruz"],
        checkin_url=CHECKIN,
        rows=[
            SheetRow(
                name=f"Officer {n} Ñúñez", agency="Chicago PD", post_id=f"IL-{n}", post_state="IL"
            )
            for n in range(1, rows + 1)
        ],
    )


def test_sign_in_sheet_lists_everyone_with_a_signature_column_and_the_checkin_qr() -> None:
    data = sign_in_sheet(sheet(3))
    text = pdf_text(data)
    for expected in (
        "Sign-in sheet",
        "Managing Bias — Chicago",
        "Day 1 of 2 · Tue 3 Nov 2026, 8:00 AM – 4:00 PM CST",
        "Metro Training Center, Room 204",
        "Instructor: Dana Cruz",
        "Signature",
        "Officer 1 Ñúñez",
        "Officer 3 Ñúñez",
        "IL-2 IL",
        "Chicago PD",
    ):
        assert expected in text, expected
    assert pdf_qr_codes(data) == [CHECKIN]


def test_a_long_sheet_runs_over_pages_and_repeats_the_heading() -> None:
    data = sign_in_sheet(sheet(60))
    pages = pdf_pages(data)
    assert pages >= 3
    text = pdf_text(data)
    assert text.count("Signature") == pages
    assert all(f"Officer {n} Ñúñez" in text for n in range(1, 61))


def test_an_empty_sheet_says_so() -> None:
    assert "Nobody is confirmed for this meeting." in pdf_text(sign_in_sheet(sheet(0)))


def test_qr_png_and_svg_for_screens() -> None:
    assert png_qr_codes(qr_png(CHECKIN)) == [CHECKIN]
    svg = qr_svg(CHECKIN, title="Check-in code")
    assert svg.startswith("<svg")
    assert "<title>Check-in code</title>" in svg
