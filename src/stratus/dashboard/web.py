"""The handlers' shared steps: the session from its cookie, the CSRF check of every
form, the form body, and turning an API's refusal into the API's own message.

A page handler is written as ``@routes.add(...)`` over ``@page``: a plain function of a
:class:`Page` (the request, the session, the user's API, the form) run in a worker
thread. ``@page`` answers a visitor without a session with the login page (or 401 for
the page's scripts), refuses a POST whose CSRF token is missing or wrong (403), and
shows an :class:`~stratus.dashboard.cloud.ApiFailure` as a message: on the page a form
came from (POST) or as an error page (GET). A 401 from an API means the token is no
longer valid: the session ends there.
"""

from __future__ import annotations

import functools
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from stratus.common.app import Req
from stratus.dashboard import views
from stratus.dashboard.cloud import ApiFailure, Cloud, UserApi
from stratus.dashboard.core import DashboardCore
from stratus.dashboard.sessions import (
    CSRF_FIELD,
    CSRF_HEADER,
    SESSION_COOKIE,
    Session,
    SessionStore,
)

API_CALLS_HEADER = "X-Stratus-Api-Calls"
MAX_FORM = 1024 * 1024  # bytes of a form body (user data is at most 64 KiB in Nova)


@dataclass
class Dashboard:
    """The one object every handler gets: the pages' service layer and the sessions."""

    core: DashboardCore
    sessions: SessionStore
    cloud: Cloud
    secure_cookies: bool = False
    region: str = ""


class FormError(Exception):
    """A form field is missing or wrong; the message says which and what is allowed."""


@dataclass
class Page:
    """What a page function gets."""

    request: Request
    session: Session
    api: UserApi
    svc: Dashboard
    form: dict[str, list[str]] = field(default_factory=dict)

    def field(self, name: str, required: bool = False, default: str = "") -> str:
        value = (self.form.get(name) or [default])[0].strip()
        if required and not value:
            raise FormError(f"The field {name!r} is required.")
        return value

    def fields(self, name: str) -> list[str]:
        return [v for v in self.form.get(name, []) if v.strip()]

    def int_field(self, name: str, low: int, high: int, default: int | None = None) -> int:
        text = self.field(name, default="" if default is None else str(default))
        try:
            value = int(text)
        except ValueError:
            raise FormError(f"The field {name!r} must be a whole number from {low} to "
                            f"{high}; {text!r} is not.") from None
        if not low <= value <= high:
            raise FormError(f"The field {name!r} must be from {low} to {high}; it is {value}.")
        return value

    def render(self, template: str, status: int = 200, **context: Any) -> Response:
        return views.render(template, status=status, session=self.session,
                            csrf=self.session.csrf, flashes=self.take_flashes(), **context)

    def take_flashes(self) -> list[tuple[str, str]]:
        flashes, self.session.flash = self.session.flash, []
        return flashes

    def flash(self, level: str, message: str) -> None:
        self.session.flash.append((level, message))

    def redirect(self, path: str) -> Response:
        return RedirectResponse(path, status_code=303)


PageFn = Callable[[Page], Response]


async def read_form(request: Request) -> dict[str, list[str]]:
    """An ``application/x-www-form-urlencoded`` body (at most :data:`MAX_FORM` bytes)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        return {}
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_FORM:
            raise FormError(f"The form is larger than {MAX_FORM} bytes.")
    return urllib.parse.parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)


def wants_json(request: Request) -> bool:
    return request.url.path.endswith(".json") or \
        "application/json" in request.headers.get("accept", "")


def page(fn: PageFn) -> Callable[[Req, Dashboard], Awaitable[Response]]:
    """Make ``fn`` a handler: session, CSRF, form, and the API's messages (module doc)."""

    @functools.wraps(fn)
    async def handler(req: Req, svc: Dashboard) -> Response:
        request = req.request
        session = svc.sessions.get(request.cookies.get(SESSION_COOKIE))
        if session is None:
            if wants_json(request) or request.method != "GET":
                return JSONResponse({"error": "Not signed in, or the session has ended."},
                                    status_code=401)
            target = urllib.parse.quote(request.url.path)
            return RedirectResponse(f"/auth/login/?next={target}", status_code=303)
        form: dict[str, list[str]] = {}
        if request.method == "POST":
            try:
                form = await read_form(request)
            except FormError as exc:
                return views.error_page(413, str(exc), session)
            sent = (form.get(CSRF_FIELD) or [""])[0] or request.headers.get(CSRF_HEADER, "")
            if not session.check_csrf(sent):
                return views.error_page(
                    403, "This form was refused: its CSRF token is missing or wrong "
                    "(reload the page and send it again).", session)
        ctx = Page(request, session, svc.cloud.user_api(session.token, session.catalog),
                   svc, form)
        started = time.perf_counter()
        try:
            resp = await run_in_threadpool(fn, ctx)
        except (ApiFailure, FormError) as exc:
            resp = failure(ctx, exc)
        # What the page cost: the API calls it made and the server-side time (the
        # benchmark reads both; a browser's devtools show Server-Timing).
        resp.headers[API_CALLS_HEADER] = str(ctx.api.calls)
        resp.headers["Server-Timing"] = \
            f"page;dur={(time.perf_counter() - started) * 1000:.1f}"
        return resp

    return handler


def failure(ctx: Page, exc: ApiFailure | FormError) -> Response:
    """Show the API's (or the form check's) message where the user is."""
    message = exc.message if isinstance(exc, ApiFailure) else str(exc)
    status = exc.status if isinstance(exc, ApiFailure) else 400
    if status == 401:  # the token was revoked or expired: the session ends with it
        ctx.svc.sessions.drop(ctx.session.id)
        if wants_json(ctx.request):
            return JSONResponse({"error": message}, status_code=401)
        return RedirectResponse("/auth/login/", status_code=303)
    if wants_json(ctx.request):
        return JSONResponse({"error": message}, status_code=status if status >= 400 else 502)
    if ctx.request.method == "POST":
        ctx.flash("error", message)
        return ctx.redirect(back(ctx.request))
    code = status if 400 <= status < 500 else 502
    return views.render("error.html", status=code, message=message, session=ctx.session,
                        csrf=ctx.session.csrf, section="")


# The list page of a form's panel when it is not the first segment of its path.
_PANEL_HOME = {"routers": "networks", "floating_ips": "networks"}


def back(request: Request) -> str:
    """Where a form came from (a path of this site only), else its panel's list page."""
    referer = urllib.parse.urlsplit(request.headers.get("referer", ""))
    host = request.headers.get("host", "")
    if referer.path.startswith("/") and referer.netloc == host:
        return referer.path
    parts = request.url.path.split("/")
    if len(parts) > 3 and parts[1] == "project":
        return f"/project/{_PANEL_HOME.get(parts[2], parts[2])}/"
    return "/project/"


def safe_next(target: str) -> str:
    """A post-login destination on this site only (no ``//host`` or scheme)."""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/project/"


_ID_CHARS = frozenset("0123456789abcdefABCDEF-")


def check_id(value: str, kind: str) -> str:
    """``value`` if it looks like a resource id (hex and dashes), else FormError: an id
    from the URL goes into an API path, so nothing else may pass."""
    if not value or len(value) > 64 or not set(value) <= _ID_CHARS:
        raise FormError(f"{value!r} is not an {kind} id.")
    return value
