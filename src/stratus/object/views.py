"""Swift's dialect: its limits, header names, metadata rules, listing formats, errors.

The limits are Swift's defaults (what ``/info`` advertises under ``swift``); a request
over one is a 400 (a name, metadata) or a 413 (a body) saying which limit.
"""

from __future__ import annotations

import json
import secrets
import time
from datetime import UTC, datetime
from email.utils import formatdate
from typing import Any
from urllib.parse import unquote
from xml.sax.saxutils import escape

from starlette.responses import Response

from stratus.common.errors import ApiError, BadRequest

LIMITS: dict[str, Any] = {
    "max_file_size": 5368709122,
    "max_meta_name_length": 128,
    "max_meta_value_length": 256,
    "max_meta_count": 90,
    "max_meta_overall_size": 4096,
    "max_header_size": 8192,
    "max_object_name_length": 1024,
    "container_listing_limit": 10000,
    "account_listing_limit": 10000,
    "max_account_name_length": 256,
    "max_container_name_length": 256,
    "extra_header_count": 0,
    "valid_api_versions": ["v1", "v1.0"],
    "strict_cors_mode": True,
}

# System metadata kept with user metadata in the container row (ACLs, quotas, keys).
CONTAINER_SYSMETA = ("x-container-read", "x-container-write")
_TITLES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
           405: "Method Not Allowed", 409: "Conflict", 411: "Length Required",
           412: "Precondition Failed", 413: "Request Entity Too Large",
           416: "Requested Range Not Satisfiable", 422: "Unprocessable Entity",
           499: "Client Disconnect", 503: "Service Unavailable"}


class LengthRequired(ApiError):
    status = 411
    title = "Length Required"


class PreconditionFailed(ApiError):
    status = 412
    title = "Precondition Failed"


class RangeNotSatisfiable(ApiError):
    status = 416
    title = "Requested Range Not Satisfiable"


class Unprocessable(ApiError):
    status = 422
    title = "Unprocessable Entity"


def trans_id() -> str:
    """``tx`` + 21 hex digits + ``-`` + 10 hex digits (the time), as Swift's."""
    return f"tx{secrets.token_hex(11)[:21]}-{int(time.time()):010x}"


def error_response(status: int, message: str, headers: dict[str, str] | None = None
                   ) -> Response:
    title = _TITLES.get(status, "Error")
    body = f"<html><h1>{title}</h1><p>{escape(message)}</p></html>"
    return Response(body, status_code=status, headers=headers,
                    media_type="text/html; charset=UTF-8")


def check_name(kind: str, name: str, limit: int) -> str:
    """A path segment: URL-decoded, valid UTF-8 without NUL, not longer than ``limit``
    bytes, and for accounts and containers without ``/``."""
    if not name:
        raise BadRequest(f"The {kind} name is empty.")
    if "\x00" in name:
        raise BadRequest(f"The {kind} name contains a NUL character, which is not allowed.")
    if "\ufffd" in name:
        raise BadRequest(f"The {kind} name is not valid UTF-8.")
    if (size := len(name.encode("utf-8"))) > limit:
        # Swift's own words (Tempest looks for them): "<Kind> name length of N longer than L"
        raise BadRequest(f"{kind.capitalize()} name length of {size} longer than {limit} "
                         "(bytes).")
    return name


def decode_segment(raw: str) -> str:
    return unquote(raw, errors="replace")


def meta_updates(headers: Any, kind: str) -> dict[str, str | None]:
    """``X-<Kind>-Meta-*`` (set; empty removes) and ``X-Remove-<Kind>-Meta-*`` (remove),
    checked against Swift's metadata limits. Keys are lower case, ``meta-`` prefixed."""
    prefix, remove = f"x-{kind}-meta-", f"x-remove-{kind}-meta-"
    out: dict[str, str | None] = {}
    total = 0
    for key, value in headers.items():
        k = key.lower()
        if k.startswith(prefix):
            name = k[len(prefix):]
        elif k.startswith(remove):
            name, value = k[len(remove):], ""
        else:
            continue
        if not name:
            raise BadRequest("A metadata header has no name after its prefix.")
        if len(name) > LIMITS["max_meta_name_length"]:
            raise BadRequest(f"Metadata name too long; max {LIMITS['max_meta_name_length']} "
                             f"characters: {name[:40]}...")
        if len(value) > LIMITS["max_meta_value_length"]:
            raise BadRequest(f"Metadata value longer than {LIMITS['max_meta_value_length']} "
                             f"characters for {name}.")
        total += len(name) + len(value)
        out[f"meta-{name}"] = value or None
    if sum(1 for v in out.values() if v) > LIMITS["max_meta_count"]:
        raise BadRequest(f"Too many metadata items; max {LIMITS['max_meta_count']}.")
    if total > LIMITS["max_meta_overall_size"]:
        raise BadRequest(f"Total metadata too large; max {LIMITS['max_meta_overall_size']} "
                         "bytes.")
    return out


def check_meta_total(meta: dict[str, Any]) -> None:
    """After merging: the stored metadata still within the count and size limits."""
    user = {k: v for k, v in meta.items() if k.startswith("meta-")}
    if len(user) > LIMITS["max_meta_count"]:
        raise BadRequest(f"Too many metadata items; max {LIMITS['max_meta_count']}.")
    if sum(len(k) - 5 + len(str(v)) for k, v in user.items()) > \
            LIMITS["max_meta_overall_size"]:
        raise BadRequest(f"Total metadata too large; max {LIMITS['max_meta_overall_size']} "
                         "bytes.")


def meta_headers(meta: dict[str, Any], kind: str) -> dict[str, str]:
    out = {}
    for key, value in meta.items():
        if key.startswith("meta-"):
            out[f"X-{kind.capitalize()}-Meta-{key[5:]}"] = str(value)
        elif key in CONTAINER_SYSMETA:
            out[key.title()] = str(value)
    return out


def http_date(ts: str | float) -> str:
    """An X-Timestamp as an HTTP date (Last-Modified rounds up, as Swift's)."""
    t = float(ts)
    return formatdate(int(t) + (1 if t % 1 else 0), usegmt=True)


def iso_time(ts: str) -> str:
    """An X-Timestamp as a listing's last_modified."""
    return datetime.fromtimestamp(float(ts), UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def listing_format(query: Any, accept: str) -> str:
    fmt = (query.get("format") or "").lower()
    if fmt in ("json", "xml", "plain"):
        return fmt
    if fmt:
        raise BadRequest(f"Unknown listing format {fmt!r}; use plain, json or xml.")
    accept = accept.lower()
    if "application/json" in accept:
        return "json"
    if "application/xml" in accept or "text/xml" in accept:
        return "xml"
    return "plain"


def render_listing(entries: list[dict[str, Any]], fmt: str, kind: str, name: str,
                   headers: dict[str, str]) -> Response:
    """A container (``kind`` "account") or object (``kind`` "container") listing."""
    if fmt == "json":
        body = json.dumps([_entry(e) for e in entries]).encode()
        media = "application/json; charset=utf-8"
    elif fmt == "xml":
        tag = "container" if kind == "account" else "object"
        items = []
        for e in entries:
            if "subdir" in e:
                items.append(f'<subdir name="{escape(e["subdir"])}"><name>'
                             f'{escape(e["subdir"])}</name></subdir>')
                continue
            fields = "".join(f"<{k}>{escape(str(v))}</{k}>" for k, v in _entry(e).items())
            items.append(f"<{tag}>{fields}</{tag}>")
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<{kind} name="{escape(name)}">'
                + "".join(items) + f"</{kind}>").encode()
        media = "application/xml; charset=utf-8"
    else:
        if not entries:
            return Response(status_code=204, headers={
                **headers, "Content-Type": "text/plain; charset=utf-8"})
        body = "".join((e.get("subdir") or e["name"]) + "\n" for e in entries).encode()
        media = "text/plain; charset=utf-8"
    return Response(body, status_code=200, headers=headers, media_type=media)


def _entry(e: dict[str, Any]) -> dict[str, Any]:
    if "subdir" in e:
        return {"subdir": e["subdir"]}
    out = dict(e)
    out["last_modified"] = iso_time(e["last_modified"])
    return out
