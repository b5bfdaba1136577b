"""The OpenStack microversion negotiation every versioned API here shares: an ASGI
middleware reading ``OpenStack-API-Version: <service> X.Y`` (and optionally a legacy
header), storing the chosen version in the request state as ``microversion``, answering a
malformed version with 400 and one outside the supported range with 406, and echoing the
chosen version in the response headers with ``Vary``."""

from __future__ import annotations

import json
import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stratus.common.errors import nova_error

Version = tuple[int, int]

VERSION_RE = re.compile(r"^([1-9][0-9]*)\.([0-9]+)$")


def version_text(v: Version) -> str:
    """``(2, 47)`` → ``"2.47"``."""
    return f"{v[0]}.{v[1]}"


def negotiate(wanted: str, min_version: Version, max_version: Version,
              version_re: re.Pattern[str] = VERSION_RE) -> tuple[Version, tuple[int, str] | None]:
    """The version a request asked for (``wanted``: the header's value, "" when absent)
    and the error to answer, if any: ``(400, message)`` when malformed (the version stays
    the minimum), ``(406, message)`` when outside min..max (the version is the one asked
    for). Absent means the minimum, ``latest`` (any case) the maximum."""
    if wanted.lower() == "latest":
        return max_version, None
    if not wanted:
        return min_version, None
    match = version_re.match(wanted)
    if not match:
        return min_version, (400, f"API Version String {wanted} is of invalid format. Must be "
                                  "of format MajorNum.MinorNum.")
    version = (int(match.group(1)), int(match.group(2)))
    if not min_version <= version <= max_version:
        return version, (406, f"Version {wanted} is not supported by the API. Minimum is "
                              f"{version_text(min_version)} and maximum is "
                              f"{version_text(max_version)}.")
    return version, None


class MicroversionMiddleware:
    """Negotiates the microversion of one service (see the module docstring).

    ``service`` names the service in the echoed ``OpenStack-API-Version``; ``aliases``
    are the service names accepted in the request header (default: ``service`` alone);
    ``legacy_header`` (spelt as ``Vary`` names it) is read when ``OpenStack-API-Version``
    names none of them, and is echoed with the bare version. Only paths starting with
    ``path_prefix`` are negotiated (others pass untouched); an error is answered only on
    paths starting with ``error_prefix``, elsewhere the request goes on with the version
    negotiated."""

    def __init__(self, app: ASGIApp, *, service: str, min_version: Version,
                 max_version: Version, aliases: tuple[str, ...] = (),
                 legacy_header: str = "", version_re: re.Pattern[str] = VERSION_RE,
                 path_prefix: str = "", error_prefix: str = "") -> None:
        self.app = app
        self.service = service
        self.aliases = tuple(a.lower() for a in aliases) or (service.lower(),)
        self.legacy_header = legacy_header.lower()
        self.min_version = min_version
        self.max_version = max_version
        self.version_re = version_re
        self.path_prefix = path_prefix
        self.error_prefix = error_prefix
        self.vary = ", ".join(h for h in ("OpenStack-API-Version", legacy_header) if h).encode()

    def wanted(self, scope: Scope) -> str:
        """The version the request asks for, "" when it names none."""
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        wanted = ""
        for part in headers.get("openstack-api-version", "").split(","):
            service, _, value = part.strip().partition(" ")
            if service.lower() in self.aliases:
                wanted = value.strip()
        if not wanted and self.legacy_header:
            wanted = headers.get(self.legacy_header, "").strip()
        return wanted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.path_prefix):
            await self.app(scope, receive, send)
            return
        version, error = negotiate(self.wanted(scope), self.min_version, self.max_version,
                                   self.version_re)
        scope.setdefault("state", {})["microversion"] = version
        text = version_text(version)
        extra = [(b"openstack-api-version", f"{self.service} {text}".encode())]
        if self.legacy_header:
            extra.append((self.legacy_header.encode(), text.encode()))
        extra.append((b"vary", self.vary))
        if error is not None and scope["path"].startswith(self.error_prefix):
            body = json.dumps(nova_error(error[0], "", error[1])).encode()
            await send({"type": "http.response.start", "status": error[0], "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()), *extra]})
            await send({"type": "http.response.body", "body": body})
            return

        async def send_with_version(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_version)
