"""Project > Containers: the object store's containers and objects as the signed-in user
(part of the pages' service layer; :class:`~stratus.dashboard.core.DashboardCore` mixes
it in).

The account is the one in the token's catalog (``.../v1/AUTH_<project>``): a name from
the URL only ever goes *under* it, quoted, so another project's account is unreachable.
A page makes one call (the account listing, or the container listing that also carries
the container's own metadata in its headers). Uploads and downloads are streamed: the
bytes pass through in chunks and are never held whole in memory.
"""

from __future__ import annotations

import html
import re
import urllib.parse
from collections.abc import AsyncIterator
from typing import Any

import httpx

from stratus.common.clients import ServiceError
from stratus.dashboard.cloud import ApiFailure, UserApi, api_message

KIND = "object-store"
PUBLIC_READ = ".r:*,.rlistings"
MAX_CONTAINER_NAME = 256  # Swift's max_container_name_length
MAX_OBJECT_NAME = 1024  # Swift's max_object_name_length
LISTING_LIMIT = 1000  # entries a page shows (Swift's own default is 10,000)
_PARAGRAPH = re.compile(r"<p>(.*?)</p>", re.S)
_TAGS = re.compile(r"<[^>]+>")


class BadName(ValueError):
    """A container or object name that cannot be used (the message says why)."""


def check_container(name: str) -> str:
    """``name`` if Swift would take it as a container name, else :class:`BadName`."""
    if not name or len(name) > MAX_CONTAINER_NAME:
        raise BadName(f"A container name has 1 to {MAX_CONTAINER_NAME} characters.")
    if "/" in name or name in (".", ".."):
        raise BadName("A container name may not contain '/' or be '.' or '..'.")
    return name


def check_object(name: str) -> str:
    """``name`` if it can be an object name here, else :class:`BadName` (a ``.`` or
    ``..`` path segment would be folded away by URL normalisation)."""
    if not name or len(name.encode()) > MAX_OBJECT_NAME:
        raise BadName(f"An object name has 1 to {MAX_OBJECT_NAME} bytes.")
    if any(part in (".", "..") for part in name.split("/")):
        raise BadName("An object name may not have '.' or '..' as a path segment.")
    return name


def container_path(container: str, obj: str = "") -> str:
    """The path under the account URL (each part quoted: no ``/`` of a name escapes)."""
    path = urllib.parse.quote(check_container(container), safe="")
    if obj:
        path += "/" + urllib.parse.quote(check_object(obj), safe="/")
    return path


def swift_message(body: Any, status: int) -> str:
    """The sentence of a Swift error (``<html><h1>Conflict</h1><p>...</p></html>``)."""
    if isinstance(body, str):
        found = _PARAGRAPH.search(body)
        text = html.unescape(_TAGS.sub("", found.group(1) if found else body)).strip()
        if text:
            return text[:300]
    return f"The object store answered {status}."


def _failure(exc: ServiceError) -> ApiFailure:
    if isinstance(exc.body, str):
        return ApiFailure(swift_message(exc.body, exc.status), exc.status)
    return ApiFailure(api_message(exc), exc.status)


class ObjectStoreCore:
    """Containers and objects (mixed into DashboardCore). ``stream_transport``: the
    transport of the streaming calls (unit tests put a fake store there)."""

    stream_transport: httpx.AsyncBaseTransport | None = None

    @staticmethod
    def _request(api: UserApi, method: str, path: str, **kw: Any) -> httpx.Response:
        # Always a full URL: ApiClient keeps a path starting "http" as a URL, and a
        # container may be named so.
        client = api.client(KIND)
        url = f"{client.base_url}/{path}" if path else client.base_url
        api.calls += 1
        try:
            return client.request(method, url, **kw)
        except ServiceError as exc:
            raise _failure(exc) from None

    def containers(self, api: UserApi) -> list[dict[str, Any]]:
        """The account's containers with their object count and bytes (one call)."""
        resp = self._request(api, "GET", "", params={"format": "json",
                                                     "limit": LISTING_LIMIT})
        return list(resp.json()) if resp.content else []

    def create_container(self, api: UserApi, name: str, public: bool) -> None:
        headers = {"X-Container-Read": PUBLIC_READ} if public else {}
        self._request(api, "PUT", container_path(name), headers=headers)

    def set_container_public(self, api: UserApi, name: str, public: bool) -> None:
        self._request(api, "POST", container_path(name),
                      headers={"X-Container-Read": PUBLIC_READ if public else ""})

    def delete_container(self, api: UserApi, name: str) -> None:
        """Swift refuses (409) while the container holds objects: that message is shown."""
        self._request(api, "DELETE", container_path(name))

    def browse(self, api: UserApi, container: str, prefix: str) -> dict[str, Any]:
        """One level of ``container`` under ``prefix``: pseudo-folders (``subdir``) and
        objects, and the container's count, bytes and read ACL (one call)."""
        params = {"format": "json", "delimiter": "/", "limit": LISTING_LIMIT}
        if prefix:
            params["prefix"] = prefix
        resp = self._request(api, "GET", container_path(container), params=params)
        entries = list(resp.json()) if resp.content else []
        read = resp.headers.get("x-container-read", "")
        return {
            "folders": [e["subdir"] for e in entries if "subdir" in e],
            "objects": [e for e in entries if "name" in e],
            "count": resp.headers.get("x-container-object-count", ""),
            "bytes": resp.headers.get("x-container-bytes-used", ""),
            "read_acl": read, "public": ".r:*" in read,
        }

    def delete_object(self, api: UserApi, container: str, name: str) -> None:
        self._request(api, "DELETE", container_path(container, name))

    def _stream_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(timeout=httpx.Timeout(60.0, read=None, write=None),
                                 transport=self.stream_transport)

    def _object_url(self, api: UserApi, container: str, name: str) -> str:
        url = api.endpoint(KIND)
        if url is None:
            raise ApiFailure("The object store is not in this cloud's catalog.", 404)
        return f"{url}/{container_path(container, name)}"

    async def upload_object(self, api: UserApi, container: str, name: str,
                            chunks: AsyncIterator[bytes], length: str | None,
                            content_type: str) -> None:
        """Pass the browser's bytes on to the object store as they arrive."""
        url = self._object_url(api, container, name)
        headers = {"X-Auth-Token": api.token,
                   "Content-Type": content_type or "application/octet-stream"}
        if length:  # else httpx sends the body chunked
            headers["Content-Length"] = length
        api.calls += 1
        async with self._stream_client() as client:
            try:
                resp = await client.put(url, content=chunks, headers=headers)
            except httpx.HTTPError as exc:
                raise ApiFailure(f"The object store could not be reached: {exc}", 502) \
                    from None
        if not resp.is_success:
            raise ApiFailure(swift_message(resp.text, resp.status_code), resp.status_code)

    async def open_object(self, api: UserApi, container: str, name: str
                          ) -> tuple[httpx.Response, httpx.AsyncClient]:
        """The object store's answer for the object, its body not yet read (the caller
        streams it with ``aiter_raw`` and closes both)."""
        url = self._object_url(api, container, name)
        api.calls += 1
        client = self._stream_client()
        try:
            request = client.build_request("GET", url, headers={"X-Auth-Token": api.token})
            resp = await client.send(request, stream=True)
        except httpx.HTTPError as exc:
            await client.aclose()
            raise ApiFailure(f"The object store could not be reached: {exc}", 502) from None
        if not resp.is_success:
            text = (await resp.aread()).decode("utf-8", "replace")
            await resp.aclose()
            await client.aclose()
            raise ApiFailure(swift_message(text, resp.status_code), resp.status_code)
        return resp, client
