"""API errors and the OpenStack-shaped bodies they turn into.

Handlers raise ``ApiError`` subclasses; the app factory turns them into a JSON
body in the style of the service (each OpenStack project has its own error
shape, and clients parse them), with the right status code. Nothing else in
a service should build error responses by hand.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class ApiError(Exception):
    status = 500
    title = "Internal Server Error"

    def __init__(self, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}


class BadRequest(ApiError):
    status = 400
    title = "Bad Request"


class Unauthorized(ApiError):
    status = 401
    title = "Unauthorized"


class Forbidden(ApiError):
    status = 403
    title = "Forbidden"


class NotFound(ApiError):
    status = 404
    title = "Not Found"


class MethodNotAllowed(ApiError):
    status = 405
    title = "Method Not Allowed"


class Conflict(ApiError):
    status = 409
    title = "Conflict"


class PayloadTooLarge(ApiError):
    status = 413
    title = "Request Entity Too Large"


class UnsupportedMediaType(ApiError):
    status = 415
    title = "Unsupported Media Type"


class ServiceUnavailable(ApiError):
    status = 503
    title = "Service Unavailable"


ErrorFormatter = Callable[[int, str, str], dict[str, Any]]


def keystone_error(status: int, title: str, message: str) -> dict[str, Any]:
    """Keystone's shape: {"error": {"code", "title", "message"}}."""
    return {"error": {"code": status, "title": title, "message": message}}


_NOVA_KEYS = {
    400: "badRequest",
    401: "unauthorized",
    403: "forbidden",
    404: "itemNotFound",
    405: "badMethod",
    409: "conflictingRequest",
    413: "overLimit",
    415: "badMediaType",
    501: "notImplemented",
    503: "serviceUnavailable",
}


def nova_error(status: int, title: str, message: str) -> dict[str, Any]:
    """Nova's shape: {"itemNotFound": {"code", "message"}}."""
    key = title if title == "overLimit" else _NOVA_KEYS.get(status, "computeFault")
    return {key: {"code": status, "message": message}}


def neutron_error(status: int, title: str, message: str) -> dict[str, Any]:
    """Neutron's shape: {"NeutronError": {"type", "message", "detail"}}."""
    kind = title.replace(" ", "")
    return {"NeutronError": {"type": kind, "message": message, "detail": ""}}


def glance_error(status: int, title: str, message: str) -> dict[str, Any]:
    """Glance's shape (webob's JSON error body): {"code": "404 Not Found", "title", "message"}."""
    return {"code": f"{status} {title}", "title": title, "message": message}
