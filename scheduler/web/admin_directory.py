"""Admin pages for the directories sessions draw on: instructors and venues (list, add, edit).

Validation is the directory's (``catalog.directory``), as for the JSON API; a refused form
comes back with what was typed and each error beside its field. An instructor's page shows
their private calendar feed's URL and can replace it, which revokes the old one.
"""

from __future__ import annotations

from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from scheduler.catalog import directory
from scheduler.errors import Invalid, NotFound
from scheduler.web.auth import admin_page
from scheduler.web.forms import field_errors, text_values
from scheduler.web.pages import error_page, flash, render
from scheduler.web.params import db_of as _db
from scheduler.web.params import parse_id
from scheduler.web.params import settings_of as _settings

INSTRUCTOR_FIELDS = ("name", "email", "credentials")
VENUE_FIELDS = ("name", "address", "city", "state", "postal_code", "room")


def _feed_url(request: Request, person: directory.Person) -> str:
    path = request.app.url_path_for("instructor_calendar", feed_token=person.feed_token)
    return f"{_settings(request).base_url}{path}"


def _instructor_body(form: FormData) -> tuple[dict[str, Any], dict[str, Any]]:
    values: dict[str, Any] = text_values(form, INSTRUCTOR_FIELDS)
    values["public"] = "on" if form.get("public") == "on" else ""
    body: dict[str, Any] = {**values, "public": values["public"] == "on"}
    return body, values


@admin_page
async def instructors(request: Request) -> Response:
    async with _db(request).read() as conn:
        people = await directory.list_instructors(conn)
    return render(
        request,
        "admin/instructors.html",
        {"page_title": "Instructors", "people": people},
        private=True,
    )


def _instructor_form(
    request: Request,
    *,
    values: dict[str, Any],
    errors: dict[str, str] | None = None,
    person: directory.Person | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "admin/instructor_form.html",
        {
            "page_title": f"Edit {person.name}" if person else "New instructor",
            "values": values,
            "errors": errors or {},
            "person": person,
            "feed_url": _feed_url(request, person) if person else "",
        },
        status_code=status_code,
        private=True,
    )


@admin_page
async def instructor_new(request: Request) -> Response:
    if request.method == "GET":
        return _instructor_form(request, values={})
    body, values = _instructor_body(await request.form())
    try:
        person = await directory.create_instructor(_db(request), body)
    except Invalid as exc:
        return _instructor_form(
            request, values=values, errors=field_errors(exc.fields), status_code=422
        )
    flash(request, f"Instructor “{person.name}” added.")
    return RedirectResponse("/admin/instructors", 303)


@admin_page
async def instructor_edit(request: Request) -> Response:
    instructor_id = parse_id(request.path_params["instructor_id"])
    try:
        if instructor_id is None:
            raise NotFound("instructor", request.path_params["instructor_id"])
        async with _db(request).read() as conn:
            person = await directory.get_instructor(conn, instructor_id)
    except NotFound:
        return error_page(request, 404, "Not found", "There is no such instructor.")
    if request.method == "GET":
        values = {
            "name": person.name,
            "email": person.email,
            "credentials": person.credentials,
            "public": "on" if person.public else "",
        }
        return _instructor_form(request, values=values, person=person)
    form = await request.form()
    body, values = _instructor_body(form)
    rotate = form.get("rotate_feed_token") == "on"
    body["rotate_feed_token"] = rotate
    try:
        person = await directory.update_instructor(_db(request), person.id, body)
    except Invalid as exc:
        return _instructor_form(
            request,
            values=values,
            errors=field_errors(exc.fields),
            person=person,
            status_code=422,
        )
    if rotate:
        flash(request, f"Saved. {person.name}’s old calendar link no longer works.")
    else:
        flash(request, f"Instructor “{person.name}” saved.")
    return RedirectResponse(f"/admin/instructors/{person.id}", 303)


@admin_page
async def venues(request: Request) -> Response:
    async with _db(request).read() as conn:
        places = await directory.list_venues(conn)
    return render(
        request, "admin/venues.html", {"page_title": "Venues", "places": places}, private=True
    )


def _venue_form(
    request: Request,
    *,
    values: dict[str, Any],
    errors: dict[str, str] | None = None,
    place: directory.Place | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "admin/venue_form.html",
        {
            "page_title": f"Edit {place.name}" if place else "New venue",
            "values": values,
            "errors": errors or {},
            "place": place,
        },
        status_code=status_code,
        private=True,
    )


@admin_page
async def venue_new(request: Request) -> Response:
    if request.method == "GET":
        return _venue_form(request, values={})
    values = text_values(await request.form(), VENUE_FIELDS)
    try:
        place = await directory.create_venue(_db(request), values)
    except Invalid as exc:
        return _venue_form(request, values=values, errors=field_errors(exc.fields), status_code=422)
    flash(request, f"Venue “{place.name}” added.")
    return RedirectResponse("/admin/venues", 303)


@admin_page
async def venue_edit(request: Request) -> Response:
    venue_id = parse_id(request.path_params["venue_id"])
    try:
        if venue_id is None:
            raise NotFound("venue", request.path_params["venue_id"])
        async with _db(request).read() as conn:
            place = await directory.get_venue(conn, venue_id)
    except NotFound:
        return error_page(request, 404, "Not found", "There is no such venue.")
    if request.method == "GET":
        values = {key: getattr(place, key) or "" for key in VENUE_FIELDS}
        return _venue_form(request, values=values, place=place)
    values = text_values(await request.form(), VENUE_FIELDS)
    try:
        place = await directory.update_venue(_db(request), place.id, values)
    except Invalid as exc:
        return _venue_form(
            request, values=values, errors=field_errors(exc.fields), place=place, status_code=422
        )
    flash(request, f"Venue “{place.name}” saved.")
    return RedirectResponse("/admin/venues", 303)


routes = [
    Route("/admin/instructors", instructors, methods=["GET"]),
    Route("/admin/instructors/new", instructor_new, methods=["GET", "POST"]),
    Route("/admin/instructors/{instructor_id}", instructor_edit, methods=["GET", "POST"]),
    Route("/admin/venues", venues, methods=["GET"]),
    Route("/admin/venues/new", venue_new, methods=["GET", "POST"]),
    Route("/admin/venues/{venue_id}", venue_edit, methods=["GET", "POST"]),
]
