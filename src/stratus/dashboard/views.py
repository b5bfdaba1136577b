"""How the dashboard answers: HTML pages from the package's Jinja2 templates (autoescaped:
a server named ``<script>`` is shown as text), the security headers every answer carries,
and the SVG network topology."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from xml.sax.saxutils import escape, quoteattr

import jinja2
from starlette.responses import HTMLResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"

ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(TEMPLATES)),
    autoescape=True,  # every value is escaped, in every template
    undefined=jinja2.ChainableUndefined,  # a field an API leaves out shows as empty
)

# No inline script or style anywhere: the pages load /static/dashboard.{js,css} only.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; frame-src 'self'; frame-ancestors 'none'; form-action 'self'; "
       "base-uri 'none'; object-src 'none'")
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]


class SecurityHeaders:
    """Adds :data:`SECURITY_HEADERS` to every answer, and ``Cache-Control: no-store`` to
    every answer that is not a static file (pages hold the user's data)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = str(scope.get("path", "")).startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                given = {name.lower() for name, _ in headers}  # a page's own CSP stays
                headers += [h for h in SECURITY_HEADERS if h[0] not in given]
                if not static:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


FRAME_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.\-]+(:[0-9]{1,5})?$|^https?://\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$")


def frame_origin(url: str) -> str | None:
    """The origin of a URL the page may frame (the novncproxy's), or None when it is not
    a plain http(s) origin (nothing of it then reaches the CSP)."""
    parts = urlsplit(url)
    origin = f"{parts.scheme}://{parts.netloc}"
    return origin if FRAME_ORIGIN.match(origin) else None


def csp_framing(origin: str) -> str:
    """:data:`CSP` with ``origin`` allowed in frames (the console page only)."""
    return CSP.replace("frame-src 'self'", f"frame-src 'self' {origin}")


def render(template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """The page ``template`` with ``context``."""
    return HTMLResponse(ENV.get_template(template).render(**context), status_code=status)


def error_page(status: int, message: str, session: Any = None) -> HTMLResponse:
    return render("error.html", status=status, message=message, session=session,
                  csrf=getattr(session, "csrf", ""), section="")


def topology_svg(state: dict[str, Any], servers: list[dict[str, Any]]) -> Response:
    """The network topology as SVG: one vertical bar per network (external ones first),
    routers between the bars they connect, servers under their networks."""
    nets = sorted(state["networks"], key=lambda n: (not n.get("router:external"),
                                                    n.get("name", "")))
    column = {n["id"]: i for i, n in enumerate(nets)}
    width = max(1, len(nets)) * 200 + 40
    ports = state["ports"]
    router_nets: dict[str, set[str]] = {}
    for p in ports:
        if str(p.get("device_owner", "")).startswith("network:router") and \
                p.get("network_id") in column:
            router_nets.setdefault(p.get("device_id", ""), set()).add(p["network_id"])
    for r in state["routers"]:
        gw = str((r.get("external_gateway_info") or {}).get("network_id") or "")
        if gw in column:
            router_nets.setdefault(r["id"], set()).add(gw)
    server_nets: dict[str, set[str]] = {}
    for p in ports:
        if str(p.get("device_owner", "")).startswith("compute:") and \
                p.get("network_id") in column:
            server_nets.setdefault(p.get("device_id", ""), set()).add(p["network_id"])
    parts: list[str] = []
    for net in nets:
        x = 40 + column[net["id"]] * 200
        parts.append(f'<rect class="net" x="{x}" y="20" width="16" height="100%" '
                     f'fill="#3b7dd8"/><text x="{x + 22}" y="36">'
                     f'{escape(net.get("name") or net["id"])}</text>')
    height = 80
    for i, router in enumerate(state["routers"]):
        y = 70 + i * 60
        cols = sorted(column[n] for n in router_nets.get(router["id"], ()))
        x = 40 + (cols[0] if cols else 0) * 200 + 60
        for c in cols:
            parts.append(f'<line x1="{40 + c * 200 + 8}" y1="{y + 15}" x2="{x + 50}" '
                         f'y2="{y + 15}" stroke="#555"/>')
        parts.append(f'<rect class="router" x="{x}" y="{y}" width="100" height="30" rx="6" '
                     f'fill="#f0ad4e"/><text x="{x + 6}" y="{y + 20}">'
                     f'{escape(router.get("name") or router["id"][:8])}</text>')
        height = max(height, y + 60)
    names = {s["id"]: s.get("name") or s["id"][:8] for s in servers}
    for j, (server_id, net_ids) in enumerate(sorted(server_nets.items())):
        y = height + j * 45
        cols = sorted(column[n] for n in net_ids)
        x = 40 + cols[0] * 200 + 60
        for c in cols:
            parts.append(f'<line x1="{40 + c * 200 + 8}" y1="{y + 15}" x2="{x}" y2="{y + 15}" '
                         f'stroke="#555"/>')
        parts.append(f'<rect class="server" x="{x}" y="{y}" width="110" height="30" rx="3" '
                     f'fill="#5cb85c"/><text x="{x + 6}" y="{y + 20}">'
                     f'{escape(names.get(server_id, server_id[:8]))}</text>')
    total = height + len(server_nets) * 45 + 20
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{total}" '
           f'font-family="sans-serif" font-size="13" aria-label={quoteattr("topology")}>'
           + "".join(parts) + "</svg>")
    return Response(svg, media_type="image/svg+xml")
