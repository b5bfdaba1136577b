# Copyright: Stratus developers
# Apache License 2.0 (see the collection's galaxy.yml)
"""A small HTTP client for Stratus's OpenStack APIs, for the collection's modules.

Standard library only (urllib, http.client, ssl, json), so modules run on any
host with Python; PyYAML is needed only to read a clouds.yaml. It

- takes a ``CloudConfig`` (``stratus_auth.resolve_cloud`` builds it from a
  clouds.yaml, OS_CLOUD, an openrc's OS_* variables and/or an ``auth`` dict);
- gets a token (password, token or application credential) from identity v3, once per
  client (that is, once per module run), and again once if a call answers 401;
- finds service endpoints in the token's catalog by service type, interface
  and region;
- sends JSON requests and streams files up (with Content-Length, or chunked),
  one block at a time, never the whole file in memory;
- raises ``StratusError`` (HTTP status + the server's own message) for every
  failure. It never calls ``exit_json`` or ``fail_json``: modules decide.

Other modules use it as::

    client = StratusClient(load_cloud(cloud="stratus"))
    networks = client.get("network", "/v2.0/networks", query={"name": "web"})["networks"]
"""

from __future__ import annotations

import http.client
import json
import os
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request

DEFAULT_CLOUDS_YAML = "/etc/stratus/clouds.yaml"
DEFAULT_CLOUD = "stratus"
BLOCK = 1024 * 1024
AUTH_KEYS = (
    "auth_url",
    "username",
    "user_id",
    "password",
    "project_name",
    "project_id",
    "user_domain_name",
    "user_domain_id",
    "project_domain_name",
    "project_domain_id",
    "domain_name",
    "domain_id",
    "token",
    "application_credential_id",
    "application_credential_name",
    "application_credential_secret",
)


class StratusError(Exception):
    """A failed call: what was asked, the HTTP status (None if no answer) and why."""

    def __init__(self, message, status=None, method=None, url=None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.method = method
        self.url = url

    def __str__(self):
        if self.status is None or self.method is None:
            return self.message
        return f"{self.method} {self.url} answered {self.status}: {self.message}"


class CloudConfig:
    """What a client needs to talk to one cloud."""

    def __init__(
        self,
        auth,
        region_name=None,
        interface="public",
        verify=True,
        cacert=None,
        timeout=60,
        name=None,
        auth_type=None,
        cert=None,
        key=None,
    ):
        self.auth = dict(auth)
        self.auth_type = auth_type
        self.cert = cert
        self.key = key
        self.region_name = region_name
        self.interface = interface or "public"
        self.verify = verify
        self.cacert = cacert
        self.timeout = timeout
        self.name = name

    @property
    def auth_url(self):
        url = (self.auth.get("auth_url") or "").rstrip("/")
        if not url:
            raise StratusError("No auth_url: give auth.auth_url or a clouds.yaml with one.")
        return url if url.endswith("/v3") else url + "/v3"


def read_yaml_clouds(path):
    """The ``clouds`` mapping of a clouds.yaml (or secure.yaml) file."""
    try:
        import yaml
    except ImportError:
        raise StratusError(f"Reading {path} needs PyYAML (python3-yaml) on this host.") from None
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh) or {}
    except OSError as exc:
        raise StratusError(f"Cannot read {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise StratusError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("clouds", {}), dict):
        raise StratusError(f"{path} has no 'clouds' mapping.")
    return data.get("clouds") or {}


def load_cloud(cloud=None, clouds_yaml=None, auth=None, **options):
    """A CloudConfig from the module options: ``stratus_auth.resolve_cloud`` does the work.

    Kept for callers of the client alone; ``options`` are resolve_cloud's other keywords.
    """
    from ansible_collections.stratus.cloud.plugins.module_utils.stratus_auth import (
        resolve_cloud,
    )

    return resolve_cloud(cloud=cloud, clouds_yaml=clouds_yaml, auth=auth, **options)


def query_value(value):
    """A filter value as a query string wants it (booleans lower-case, lists kept)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return [query_value(v) for v in value]
    return str(value)


def error_message(body):
    """The server's own message from an OpenStack error body (any project's shape)."""
    if isinstance(body, dict):
        if isinstance(body.get("message"), str):
            return body["message"]
        for value in body.values():
            if isinstance(value, dict) and isinstance(value.get("message"), str):
                return value["message"]
    if isinstance(body, str) and body.strip():
        return body.strip()[:500]
    return None


class Response:
    """Status, headers (lower-case names) and the decoded JSON body (or None)."""

    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body


class StratusClient:
    """Token, catalog and requests for one cloud; see the module docstring."""

    def __init__(self, config):
        self.config = config
        self.token = None
        self.catalog = []
        self.project_id = None
        self.user_id = None
        self._ssl = self._ssl_context()
        # What urllib.request.urlopen(context=...) builds, made once: plain urllib, as the
        # client is standard library only and verifies TLS with its own context.
        self._opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=self._ssl))

    def _ssl_context(self):
        if not self.config.verify:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        else:
            context = ssl.create_default_context(cafile=self.config.cacert)
        if self.config.cert:
            context.load_cert_chain(self.config.cert, self.config.key)
        return context

    # ---- authentication ------------------------------------------------------------------

    def _auth_body(self):
        auth = self.config.auth
        if self.config.auth_type == "v3applicationcredential":
            cred = {"secret": auth.get("application_credential_secret")}
            if auth.get("application_credential_id"):
                cred["id"] = auth["application_credential_id"]
            else:
                cred["name"] = auth.get("application_credential_name")
                cred["user"] = ({"id": auth["user_id"]} if auth.get("user_id") else
                                {"name": auth.get("username"), "domain": _domain(auth, "user")})
            identity = {"methods": ["application_credential"], "application_credential": cred}
            return {"auth": {"identity": identity}}
        if auth.get("token") and self.config.auth_type != "password":
            identity = {"methods": ["token"], "token": {"id": auth["token"]}}
        else:
            if not auth.get("password") or not (auth.get("username") or auth.get("user_id")):
                raise StratusError("auth needs username (or user_id) and password, or a token.")
            if auth.get("user_id"):
                user = {"id": auth["user_id"]}
            else:
                user = {"name": auth["username"], "domain": _domain(auth, "user")}
            user["password"] = auth["password"]
            identity = {"methods": ["password"], "password": {"user": user}}
        body = {"auth": {"identity": identity}}
        if auth.get("project_id"):
            body["auth"]["scope"] = {"project": {"id": auth["project_id"]}}
        elif auth.get("project_name"):
            body["auth"]["scope"] = {
                "project": {"name": auth["project_name"], "domain": _domain(auth, "project")}
            }
        elif auth.get("domain_id") or auth.get("domain_name"):
            key = "id" if auth.get("domain_id") else "name"
            body["auth"]["scope"] = {"domain": {key: auth.get("domain_" + key)}}
        return body

    def authenticate(self):
        """Get a token and the catalog (called on first use and after a 401)."""
        url = self.config.auth_url + "/auth/tokens"
        resp = self._send("POST", url, self._auth_body(), {}, (201,))
        self.token = resp.headers.get("x-subject-token")
        token = (resp.body or {}).get("token") or {}
        self.catalog = token.get("catalog") or []
        self.project_id = (token.get("project") or {}).get("id")
        self.user_id = (token.get("user") or {}).get("id")
        if not self.token:
            raise StratusError("Identity issued no token (no X-Subject-Token header).")

    def endpoint(self, service_type, interface=None, region_name=None):
        """The URL of ``service_type`` in the catalog, for the interface and region."""
        if self.token is None:
            self.authenticate()
        interface = interface or self.config.interface
        region = region_name or self.config.region_name
        types = []
        for service in self.catalog:
            types.append(service.get("type"))
            if service.get("type") != service_type:
                continue
            for ep in service.get("endpoints") or []:
                ep_region = ep.get("region_id") or ep.get("region")
                if ep.get("interface") == interface and (not region or ep_region == region):
                    return ep["url"].rstrip("/")
        raise StratusError(
            "No {} endpoint of service type {!r}{} in the catalog (it has: {}).".format(
                interface,
                service_type,
                f" in region {region}" if region else "",
                ", ".join(sorted(t for t in types if t)) or "nothing",
            )
        )

    # ---- requests ------------------------------------------------------------------------

    def _send(self, method, url, body, headers, expect, content_type="application/json"):
        data = None
        hdrs = {"Accept": "application/json", "User-Agent": "stratus.cloud-ansible"}
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            hdrs["Content-Type"] = content_type
        hdrs.update(headers)
        request = urllib.request.Request(url, data=data, method=method, headers=hdrs)
        try:
            resp = self._opener.open(request, timeout=self.config.timeout)
            status, content, resp_headers = resp.status, resp.read(), resp.headers
        except urllib.error.HTTPError as exc:
            status, content, resp_headers = exc.code, exc.read(), exc.headers
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", exc)
            raise StratusError(f"{method} {url} failed: {reason}") from None
        return self._response(method, url, status, content, resp_headers, expect)

    @staticmethod
    def _response(method, url, status, content, headers, expect):
        text = content.decode("utf-8", "replace") if content else ""
        try:
            decoded = json.loads(text) if text else None
        except ValueError:
            decoded = text
        if expect and status not in expect:
            message = error_message(decoded) or f"HTTP {status}"
            raise StratusError(message, status=status, method=method, url=url)
        lowered = dict((k.lower(), v) for k, v in headers.items())
        return Response(status, lowered, decoded)

    def request(
        self,
        method,
        service_type,
        path,
        body=None,
        query=None,
        headers=None,
        expect=(200, 201, 202, 204),
        content_type="application/json",
    ):
        """A JSON call to ``service_type``; re-authenticates once on a 401.

        ``content_type`` names the media type of a JSON body when the API wants
        its own (the image API's json-patch type).
        """
        for attempt in (1, 2):
            url = self._url(service_type, path, query)
            hdrs = dict(headers or {})
            hdrs["X-Auth-Token"] = self.token
            try:
                return self._send(method, url, body, hdrs, expect, content_type)
            except StratusError as exc:
                if exc.status == 401 and attempt == 1:
                    self.authenticate()
                    continue
                raise
        raise AssertionError("unreachable")

    def get(self, service_type, path, query=None, expect=(200,)):
        return self.request("GET", service_type, path, query=query, expect=expect).body

    def _url(self, service_type, path, query=None):
        url = path if "://" in path else self.endpoint(service_type) + path
        if query:
            url += ("&" if "?" in url else "?") + urllib.parse.urlencode(query, doseq=True)
        return url

    def upload_file(
        self,
        service_type,
        path,
        filename,
        method="PUT",
        chunked=False,
        headers=None,
        expect=(200, 201, 204),
        timeout=None,
    ):
        """Stream a local file as the body of a request, one block at a time.

        With ``chunked`` the body goes with Transfer-Encoding: chunked, else with
        a Content-Length (and X-OpenStack-Image-Size) of the file's size.
        """
        if self.token is None:
            self.authenticate()
        url = self._url(service_type, path)
        parts = urllib.parse.urlsplit(url)
        size = os.path.getsize(filename)
        hdrs = {
            "X-Auth-Token": self.token,
            "Content-Type": "application/octet-stream",
            "Accept": "application/json",
            "User-Agent": "stratus.cloud-ansible",
        }
        if chunked:
            hdrs["Transfer-Encoding"] = "chunked"
        else:
            hdrs["Content-Length"] = str(size)
            hdrs["X-OpenStack-Image-Size"] = str(size)
        hdrs.update(headers or {})
        conn = self._connection(parts, timeout or self.config.timeout)
        target = parts.path + ("?" + parts.query if parts.query else "")
        try:
            conn.putrequest(method, target, skip_accept_encoding=True)
            for key, value in hdrs.items():
                conn.putheader(key, value)
            conn.endheaders()
            sent_all = self._send_file(conn, filename, chunked)
            resp = conn.getresponse()
            content = resp.read()
            result = self._response(method, url, resp.status, content, resp.headers, expect)
        except (OSError, http.client.HTTPException) as exc:
            raise StratusError(f"{method} {url} failed while sending {filename}: {exc}") from None
        finally:
            conn.close()
        if not sent_all and result.status < 300:
            raise StratusError(f"{filename} changed while it was being sent.")
        return result

    def _connection(self, parts, timeout):
        if parts.scheme == "https":
            return http.client.HTTPSConnection(
                parts.hostname, parts.port, timeout=timeout, context=self._ssl
            )
        return http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)

    @staticmethod
    def _send_file(conn, filename, chunked):
        """Send the file; False when it was not read to the size announced."""
        size = os.path.getsize(filename)
        sent = 0
        with open(filename, "rb") as fh:
            while True:
                block = fh.read(BLOCK)
                if not block:
                    break
                if not chunked and sent + len(block) > size:
                    block = block[: size - sent]
                if chunked:
                    conn.send(b"%x\r\n" % len(block) + block + b"\r\n")
                else:
                    conn.send(block)
                sent += len(block)
                if not chunked and sent >= size:
                    break
        if chunked:
            conn.send(b"0\r\n\r\n")
        return chunked or sent == size

    def wait_for(self, fetch, done, failed=(), timeout=180, interval=2.0):
        """Poll ``fetch()`` until ``done(result)``; raise when ``failed(result)`` or on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            result = fetch()
            if done(result):
                return result
            reason = failed(result) if callable(failed) else None
            if reason:
                raise StratusError(reason)
            if time.monotonic() >= deadline:
                raise StratusError(
                    f"Timed out after {timeout} s waiting (last state: {_summary(result)})."
                )
            time.sleep(interval)


def _summary(result):
    if isinstance(result, dict):
        return result.get("status") or result.get("id") or "unknown"
    return result


def _domain(auth, kind):
    if auth.get(f"{kind}_domain_id"):
        return {"id": auth[f"{kind}_domain_id"]}
    if auth.get(f"{kind}_domain_name"):
        return {"name": auth[f"{kind}_domain_name"]}
    return {"id": "default"}
