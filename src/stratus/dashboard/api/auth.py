"""Sign in and out: the login page (Horizon's form: ``username``, ``password``,
``region``, ``domain`` and ``csrfmiddlewaretoken``; the field ids tempest looks for),
the session cookie, and logout, which revokes the token at the identity API."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from stratus.common.app import Req, Routes
from stratus.dashboard import views
from stratus.dashboard.cloud import ApiFailure
from stratus.dashboard.sessions import (
    CSRF_FIELD,
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    check_login_csrf,
    new_login_csrf,
)
from stratus.dashboard.web import Dashboard, FormError, read_form, safe_next

routes = Routes()


def _secure(request: Request, svc: Dashboard) -> bool:
    return svc.secure_cookies or request.url.scheme == "https"


def login_page(request: Request, svc: Dashboard, message: str = "", status: int = 200,
               username: str = "") -> Response:
    """The form, with a fresh double-submit CSRF token in a cookie and a hidden field."""
    token = new_login_csrf()
    resp = views.render("login.html", status=status, message=message, csrf=token,
                        region=svc.region, username=username,
                        next=safe_next(request.query_params.get("next", "/project/")),
                        session=None, section="")
    resp.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="lax",
                    secure=_secure(request, svc), path="/auth/")
    return resp


@routes.add("GET", "/")
async def home(req: Req, svc: Dashboard) -> Response:
    """The project overview when signed in, the login page otherwise."""
    if svc.sessions.get(req.request.cookies.get(SESSION_COOKIE)) is not None:
        return RedirectResponse("/project/", status_code=303)
    return login_page(req.request, svc)


@routes.add("GET", "/auth/login/")
async def show_login(req: Req, svc: Dashboard) -> Response:
    return login_page(req.request, svc)


@routes.add("POST", "/auth/login/")
async def login(req: Req, svc: Dashboard) -> Response:
    """Check the CSRF token, sign in at identity, start a session with a new id."""
    request = req.request
    try:
        form = await read_form(request)
    except FormError as exc:
        return login_page(request, svc, str(exc), 413)

    def field(name: str) -> str:
        return (form.get(name) or [""])[0].strip()

    if not check_login_csrf(request.cookies.get(LOGIN_CSRF_COOKIE), field(CSRF_FIELD)):
        return login_page(request, svc, "The login form was refused: its CSRF token is "
                          "missing or wrong (cookies must be enabled). Try again.", 403)
    username, password = field("username"), (form.get("password") or [""])[0]
    domain = field("domain") or "Default"
    if not username or not password:
        return login_page(request, svc, "Enter a user name and a password.", 400, username)
    try:
        login = await run_in_threadpool(svc.cloud.login, username, password, domain)
    except ApiFailure as exc:
        return login_page(request, svc, exc.message, 401 if exc.status == 401 else 400,
                          username)
    session = svc.sessions.create(login.token, login.expires, login.user, login.project,
                                  login.roles, login.catalog)
    resp = RedirectResponse(safe_next(field("next") or "/project/"), status_code=303)
    resp.set_cookie(SESSION_COOKIE, session.id, httponly=True, samesite="lax",
                    secure=_secure(request, svc), path="/")
    resp.delete_cookie(LOGIN_CSRF_COOKIE, path="/auth/")
    return resp


@routes.add("POST", "/auth/logout/")
async def logout(req: Req, svc: Dashboard) -> Response:
    """End the session and revoke its token (CSRF-checked, like every form)."""
    request = req.request
    session = svc.sessions.get(request.cookies.get(SESSION_COOKIE))
    resp = RedirectResponse("/auth/login/", status_code=303)
    if session is None:
        resp.delete_cookie(SESSION_COOKIE, path="/")
        return resp
    form = await read_form(request)
    if not session.check_csrf((form.get(CSRF_FIELD) or [""])[0]):
        return views.error_page(403, "The logout form was refused: its CSRF token is "
                                "missing or wrong.", session)
    svc.sessions.drop(session.id)
    await run_in_threadpool(svc.cloud.logout, session.token)
    resp.delete_cookie(SESSION_COOKIE, path="/")
    return resp
