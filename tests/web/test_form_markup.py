"""Every form's rendered HTML, read by ``html.parser``: each attribute stands on its own.

The page templates trim whitespace around block tags, which once glued ``required`` to the next
attribute (``requiredautocomplete="name"``): the browser then saw neither, so autofill stopped
and screen readers were not told what is required. Here every form on every page is parsed and
each attribute name must be one HTML knows; a field whose label carries the required star must
say ``required``; the register and sign-in fields keep their ``autocomplete`` tokens.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser

from tests.web.page_client import post_form, sign_in
from tests.web.test_pages import make_course_and_session, register

# Attributes the templates may use on form controls (HTML's own, ARIA and data-*).
KNOWN = {
    "id",
    "name",
    "type",
    "value",
    "required",
    "autocomplete",
    "min",
    "max",
    "inputmode",
    "aria-invalid",
    "aria-describedby",
    "checked",
    "selected",
    "readonly",
    "rows",
    "maxlength",
    "class",
    "for",
    "label",
    "method",
    "action",
    "novalidate",
    "href",
    "rel",
    "open",
    "role",
    "aria-hidden",
    "download",
    "disabled",
    "minlength",
    "accept",
    "enctype",
}


@dataclass
class Control:
    tag: str
    attrs: dict[str, str | None]


@dataclass
class FormReader(HTMLParser):
    forms: list[list[Control]] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    _in_form: bool = False
    _label_for: str | None = None
    _label_text: str = ""

    def __post_init__(self) -> None:
        super().__init__(convert_charrefs=True)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "form":
            self._in_form = True
            self.forms.append([Control(tag, found)])
        elif self._in_form:
            self.forms[-1].append(Control(tag, found))
        if tag == "label":
            self._label_for = found.get("for")
            self._label_text = ""
        if tag == "span" and self._label_for and "req" in (found.get("class") or ""):
            self._label_text += "*"

    def handle_data(self, data: str) -> None:
        if self._label_for:
            self._label_text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._in_form = False
        if tag == "label" and self._label_for:
            self.labels[self._label_for] = self._label_text
            self._label_for = None


def read_forms(page: str) -> FormReader:
    reader = FormReader()
    reader.feed(page)
    reader.close()
    return reader


def check_page(url: str, page: str) -> list[Control]:
    reader = read_forms(page)
    assert reader.forms, f"{url} has no form"
    controls = [c for form in reader.forms for c in form]
    for control in controls:
        for name in control.attrs:
            assert name in KNOWN or name.startswith("data-"), (
                f"{url}: <{control.tag}> has an attribute {name!r} (merged attributes?)"
            )
    for control in controls:
        if control.tag in ("input", "select", "textarea") and control.attrs.get("id"):
            label = reader.labels.get(str(control.attrs["id"]), "")
            if "*" in label and control.attrs.get("type") != "radio":
                assert "required" in control.attrs, f"{url}: {control.attrs['id']} lost required"
    return controls


def by_name(controls: list[Control], name: str) -> list[Control]:
    return [c for c in controls if c.attrs.get("name") == name]


async def test_every_form_keeps_each_attribute_separate(client, db):
    csrf = await sign_in(client, db)
    session_id = await make_course_and_session(client, csrf)
    token, _ = await register(client, csrf, session_id, 1)
    await register(client, csrf, session_id, 2)
    await register(client, csrf, session_id, 3)
    registration_id = 1  # Officer 1, confirmed

    pages = [
        "/courses/managing-bias",
        f"/registrations/{token}/cancel",
        "/admin/courses/new",
        "/admin/courses/managing-bias",
        "/admin/courses/managing-bias/sessions/new",
        f"/admin/sessions/{session_id}/edit",
        f"/admin/sessions/{session_id}",
        f"/admin/sessions/{session_id}/cancel",
        f"/admin/registrations/{registration_id}/cancel",
        "/admin/outbox?status=pending",
        "/admin/tokens",
        "/admin/password",
    ]
    seen: dict[str, list[Control]] = {}
    for url in pages:
        response = await client.get(url)
        assert response.status_code == 200, url
        seen[url] = check_page(url, response.text)

    course = seen["/courses/managing-bias"]
    for name, token_name in (("name", "name"), ("email", "email"), ("agency", "organization")):
        [field_] = by_name(course, name)
        assert "required" in field_.attrs
        assert field_.attrs["autocomplete"] == token_name
    assert by_name(course, "rank")[0].attrs["autocomplete"] == "organization-title"
    assert "required" not in by_name(course, "rank")[0].attrs

    # A refused form comes back with the same markup.
    refused = await post_form(
        client, f"/sessions/{session_id}/register", {"name": "", "attendance": "virtual"}, csrf
    )
    assert refused.status_code == 422
    check_page("refused register form", refused.text)

    await post_form(client, "/admin/logout", {}, csrf)
    login = await client.get("/admin/login")
    controls = check_page("/admin/login", login.text)
    [email] = by_name(controls, "email")
    [password] = by_name(controls, "password")
    assert "required" in email.attrs and email.attrs["autocomplete"] == "username"
    assert "required" in password.attrs and password.attrs["autocomplete"] == "current-password"
