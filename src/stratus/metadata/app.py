"""stratus-metadata: answers instances' metadata requests relayed by the metadata proxies.

Every request comes from a proxy in a network's namespace with three headers:
``X-Forwarded-For`` (the instance's fixed IP), ``X-Stratus-Network-ID`` and
``X-Stratus-Signature`` (hex HMAC-SHA256 of ``"<network id>\\n<fixed ip>"`` with
the shared secret). A missing header is a 400, a wrong signature a 403. The
instance is looked up by network + fixed IP through the compute API (service
user token; an IPv6 address in its canonical text, docs/metadata.md), cached for
``cache_ttl`` seconds, and its files are served from
:func:`stratus.contracts.metadata_tree.render` (the same files the compute agent
writes into config drives) plus the EC2 plain-text tree. An instance can only
ever see its own data: nothing else selects the instance.

The two handlers (:func:`get_path` for GET/HEAD, :func:`post_path` for the
password) are top-level functions of ``(req, svc)`` in :data:`routes`, bound to
one :class:`MetadataService` by :func:`build_app`. In front of them :class:`WarmPath`
answers a GET or HEAD whose signed headers were verified before and whose answer is
already kept with the cached instance, without Starlette's per-request layers (issue 17:
the same bytes, request id and access-log line; everything else goes the full way).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from stratus.common import longpoll
from stratus.common.app import (
    ACCESS_LOG,
    REQUEST_ID_RE,
    Req,
    Router,
    Routes,
    create_app,
    new_request_id,
    run_service,
    setup_logging,
)
from stratus.common.clients import ApiClient, PasswordAuth, ServiceError
from stratus.common.config import Config, ConfigError
from stratus.common.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    MethodNotAllowed,
    NotFound,
    ServiceUnavailable,
    nova_error,
)
from stratus.contracts import metadata_tree as content
from stratus.contracts.instance import ContractError, InstanceDocument
from stratus.metadata.cache import TTLCache

SECTION = "metadata"
LOG = logging.getLogger("stratus.metadata")
MAX_PASSWORD_BYTES = 256
HEADER_IP = "x-forwarded-for"
HEADER_NETWORK = "x-stratus-network-id"
HEADER_SIGNATURE = "x-stratus-signature"
# Answers kept per cached instance (a crawl asks a few dozen paths), and signed header
# triples remembered as verified (MetadataService.identify).
MAX_ANSWERS = 128
MAX_VERIFIED = 20000


def expected_signature(secret: str, network_id: str, fixed_ip: str) -> str:
    """The signature a proxy sends (same as ``stratus.agent.network.metadata_proxy.sign``)."""
    return hmac.new(secret.encode(), f"{network_id}\n{fixed_ip}".encode(),
                    hashlib.sha256).hexdigest()


class InstanceSource(Protocol):
    """Where instance documents come from (the compute API; a fake in unit tests): the
    JSON form, read into an :class:`InstanceDocument` by the service."""

    def lookup(self, network_id: str, fixed_ip: str) -> dict[str, Any] | None: ...

    def set_password(self, server_id: str, password: str) -> None: ...


class ComputeSource:
    """The compute API's metadata endpoints, called as the metadata service user."""

    def __init__(self, client: ApiClient) -> None:
        self.client = client

    def lookup(self, network_id: str, fixed_ip: str) -> dict[str, Any] | None:
        try:
            body = self.client.get("stratus/metadata",
                                   params={"network_id": network_id, "fixed_ip": fixed_ip})
        except ServiceError as exc:
            if exc.status == 404:
                return None
            raise
        except ValueError:  # a 2xx answer that is not JSON
            raise ServiceError("compute answered the metadata lookup with something that is "
                               "not JSON", status=502, temporary=True) from None
        instance = body.get("instance") if isinstance(body, dict) else None
        if not isinstance(instance, dict) or not instance.get("uuid"):
            raise ServiceError("compute answered the metadata lookup without an instance",
                               status=502, temporary=True)
        return instance

    def set_password(self, server_id: str, password: str) -> None:
        self.client.put(f"stratus/metadata/{server_id}/password", {"password": password})


@dataclass(frozen=True)
class Answer:
    """A rendered answer: the body, its content type as the handler sends it, and the
    response headers that go with them (content-length, content-type), made once."""

    body: bytes
    kind: str
    headers: tuple[tuple[bytes, bytes], ...]

    @classmethod
    def of(cls, body: bytes, kind: str) -> Answer:
        if kind == "text/plain":
            kind = "text/plain; charset=utf-8"
        return cls(body, kind, ((b"content-length", str(len(body)).encode()),
                                (b"content-type", kind.encode("latin-1"))))


@dataclass
class Instance:
    """One instance's document and everything rendered from it (cached together)."""

    doc: InstanceDocument
    files: dict[str, bytes]
    ec2: dict[str, Any]
    # Answers already given, by path (MetadataService.cached): at most MAX_ANSWERS, and
    # gone with the entry when the cache reloads the instance.
    answers: dict[str, Answer] = field(default_factory=dict, repr=False)

    @classmethod
    def from_doc(cls, doc: InstanceDocument | dict[str, Any]) -> Instance:
        doc = InstanceDocument.coerce(doc)
        return cls(doc, content.render(doc), content.ec2_tree(doc))


@dataclass
class Settings:
    shared_secret: str
    cache_ttl: float = 5.0
    negative_cache_ttl: float = 2.0
    cache_max_entries: int = 10000


class MetadataService:
    """Authenticates proxied requests, finds the instance, answers the path."""

    def __init__(self, source: InstanceSource, settings: Settings) -> None:
        if not settings.shared_secret:
            raise ConfigError("[metadata] shared_secret is empty; set it to the same value "
                              "as [agent] metadata_shared_secret")
        self.source = source
        self.settings = settings
        self.cache: TTLCache[Instance] = TTLCache(
            settings.cache_ttl, settings.negative_cache_ttl, settings.cache_max_entries)
        self._verified: dict[tuple[Any, Any, Any], tuple[str, str]] = {}
        # The listings that are the same for every instance (the version lists).
        self._static = {path: Answer.of(*self._render(path, _no_instance))
                        for path in ("/", "/openstack", "/openstack/")}

    # -- who is asking -------------------------------------------------------------
    def identify(self, headers: Any) -> tuple[str, str]:
        """(network id, fixed ip) of a correctly signed request; 400/403 otherwise. The
        header values of a request that passed are remembered (the same three values
        always give the same answer), so a guest's next requests skip the parsing and
        the HMAC."""
        raw = (headers.get(HEADER_IP), headers.get(HEADER_NETWORK),
               headers.get(HEADER_SIGNATURE))
        known = self._verified.get(raw)
        if known is not None:
            return known
        found = self._identify(headers)
        if len(self._verified) >= MAX_VERIFIED:
            self._verified.clear()  # a flood of different addresses: start again
        self._verified[raw] = found
        return found

    def _identify(self, headers: Any) -> tuple[str, str]:
        missing = [h for h in ("X-Forwarded-For", "X-Stratus-Network-ID", "X-Stratus-Signature")
                   if not headers.get(h.lower(), "").strip()]
        if missing:
            raise BadRequest(
                f"Missing header(s) {', '.join(missing)}: metadata requests must come through "
                "the Stratus metadata proxy, which adds X-Forwarded-For, X-Stratus-Network-ID "
                "and X-Stratus-Signature.")
        fixed_ip = headers[HEADER_IP].split(",")[0].strip()
        network_id = headers[HEADER_NETWORK].strip()
        signature = headers[HEADER_SIGNATURE].strip().lower()
        try:
            address = ipaddress.ip_address(fixed_ip)
        except ValueError:
            raise BadRequest(f"X-Forwarded-For {fixed_ip!r} is not an IP address.") from None
        wanted = expected_signature(self.settings.shared_secret, network_id, fixed_ip)
        if not hmac.compare_digest(wanted.encode(), signature.encode("ascii", "replace")):
            LOG.warning("metadata request for %s on network %s has a bad signature",
                        fixed_ip, network_id)
            raise Forbidden("The X-Stratus-Signature of this request is not valid for its "
                            "network and address (is the proxy's shared secret the same as "
                            "[metadata] shared_secret?).")
        return network_id, _fixed_ip(address)

    def instance(self, network_id: str, fixed_ip: str, load_ok: bool = True) -> Instance:
        if not load_ok:
            hit, cached = self.cache.peek((network_id, fixed_ip))
            if not hit:
                raise _MustLoad()
            if cached is None:
                raise NotFound(f"No instance has the address {fixed_ip} on network "
                               f"{network_id}.")
            return cached

        def load() -> Instance | None:
            doc = self.source.lookup(network_id, fixed_ip)
            if doc is None:
                return None
            try:
                return Instance.from_doc(doc)
            except ContractError as exc:
                raise ServiceError(f"compute answered the metadata lookup with a document "
                                   f"that is not an instance document ({exc})", status=502,
                                   temporary=True) from None

        try:
            found = self.cache.get_or_load((network_id, fixed_ip), load)
        except ServiceError as exc:
            LOG.error("metadata lookup of %s on network %s failed: %s", fixed_ip, network_id, exc)
            raise ServiceUnavailable(
                "The compute API could not be asked for this instance's metadata; "
                "try again later.") from None
        if found is None:
            raise NotFound(f"No instance has the address {fixed_ip} on network {network_id}.")
        return found

    # -- what is asked ------------------------------------------------------------
    def get(self, network_id: str, fixed_ip: str, path: str, load: bool = True
            ) -> tuple[bytes, str]:
        """(body, content type) for GET/HEAD of ``path``; raises NotFound. With
        ``load=False`` only the cache is used (``_MustLoad`` when it has no entry)."""
        return self._render(path, lambda: self.instance(network_id, fixed_ip, load))

    def cached(self, network_id: str, fixed_ip: str, path: str) -> Answer:
        """:meth:`get` from the cache only (``_MustLoad`` when it has no entry), the
        answer kept with the cached instance for the next request of the same path."""
        found, inst = self.cache.peek((network_id, fixed_ip))
        if not found:
            raise _MustLoad()
        if inst is None:  # no such instance: only the listings that need none answer
            return Answer.of(*self.get(network_id, fixed_ip, path, load=False))
        answer = inst.answers.get(path)
        if answer is None:
            answer = Answer.of(*self._render(path, lambda: inst))
            if len(inst.answers) < MAX_ANSWERS:
                inst.answers[path] = answer
        return answer

    def kept(self, ip: str | None, network: str | None, signature: str | None, path: str
             ) -> Answer | None:
        """The answer already kept for ``path`` when these three header values were
        verified before (:meth:`identify`) and their instance is fresh in the cache; None
        otherwise (the full path then answers: signature check, lookup, render, errors).
        Never renders, never loads, never raises."""
        known = self._verified.get((ip, network, signature))
        if known is None:
            return None
        static = self._static.get(path)
        if static is not None:
            return static
        _found, inst = self.cache.peek(known)
        if inst is None:
            return None
        return inst.answers.get(path)

    def _render(self, path: str, instance: Callable[[], Instance]) -> tuple[bytes, str]:
        """The answer for ``path``; ``instance()`` gives the instance when it needs one."""
        parts = [p for p in path.split("/") if p]
        if not parts:
            return _text([*content.EC2_VERSIONS, "latest"])
        if parts[0] == "openstack":
            if len(parts) == 1:
                return _text([*content.OPENSTACK_VERSIONS, "latest"])
            version = _openstack_version(parts[1])
            inst = instance()
            names = sorted(n.rsplit("/", 1)[1] for n in inst.files
                           if n.startswith(f"openstack/{version}/"))
            has_password = version == "latest" or version >= content.PASSWORD_SINCE
            if len(parts) == 2:
                return _text(names + (["password"] if has_password else []))
            if len(parts) == 3:
                name = parts[2]
                if name == "password" and has_password:
                    return (inst.doc.password or "").encode(), "text/plain"
                data = inst.files.get(f"openstack/{version}/{name}")
                if data is not None:
                    kind = ("application/json" if name.endswith(".json")
                            else "application/octet-stream")  # user_data may be binary
                    return data, kind
            raise NotFound(f"{path} does not exist; see /openstack/{version}/ for the files.")
        version = parts[0]
        if version != "latest" and version not in content.EC2_VERSIONS:
            raise NotFound(f"{path} does not exist: the metadata versions are listed at /.")
        inst = instance()
        user_data = inst.files.get("ec2/latest/user-data")
        if len(parts) == 1:
            return _text(["meta-data/"] + (["user-data"] if user_data is not None else []))
        if parts[1] == "user-data" and len(parts) == 2:
            if user_data is None:
                raise NotFound("This instance has no user data.")
            return user_data, "application/octet-stream"
        if parts[1] == "meta-data":
            found = content.ec2_text(inst.ec2, "/".join(parts[2:]))
            if found is not None:
                return found, "text/plain"
        raise NotFound(f"{path} does not exist; see /{version}/meta-data/ for the keys.")

    def post(self, network_id: str, fixed_ip: str, path: str, body: bytes) -> None:
        """POST is only for ``/openstack/<version>/password`` (stored once)."""
        parts = [p for p in path.split("/") if p]
        if (len(parts) != 3 or parts[0] != "openstack" or parts[2] != "password"):
            raise MethodNotAllowed(
                f"POST is not allowed on {path}; only /openstack/latest/password accepts it.")
        version = _openstack_version(parts[1])
        if version != "latest" and version < content.PASSWORD_SINCE:
            raise NotFound(f"Metadata version {version} has no password.")
        if len(body) > MAX_PASSWORD_BYTES:
            raise BadRequest(f"The password is {len(body)} bytes; at most "
                             f"{MAX_PASSWORD_BYTES} bytes are accepted.")
        try:
            password = body.decode("utf-8")
        except UnicodeDecodeError:
            raise BadRequest("The password must be UTF-8 text (the guest posts base64).") from None
        inst = self.instance(network_id, fixed_ip)
        if inst.doc.password:
            raise Conflict("This instance's password is already set; it can be posted only once.")
        try:
            self.source.set_password(inst.doc.uuid, password)
        except ServiceError as exc:
            if exc.status == 409:
                raise Conflict("This instance's password is already set; "
                               "it can be posted only once.") from None
            if exc.status == 404:
                raise NotFound("This instance no longer exists.") from None
            LOG.error("storing the password of %s failed: %s", inst.doc.uuid, exc)
            raise ServiceUnavailable("The compute API could not store the password; "
                                     "try again later.") from None
        finally:
            self.cache.invalidate((network_id, fixed_ip))


def _fixed_ip(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """The address as the compute API keeps fixed IPs (canonical text; an IPv4-mapped
    IPv6 address as IPv4). A link-local IPv6 address is no fixed IP: the proxy maps a
    link-local client to its port's fixed IP (``agent/network/metadata_v6.py``)."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        if address.is_link_local:
            raise NotFound(f"X-Forwarded-For {address} is a link-local address, which is no "
                           "port's fixed IP: the metadata proxy sends the fixed IP of the "
                           "port it maps a link-local client to.")
        return str(ipaddress.IPv6Address(address.packed))  # without a zone
    return str(address)


def _no_instance() -> Instance:
    raise AssertionError("a listing that needs no instance asked for one")


class _MustLoad(Exception):
    """The answer needs a compute lookup: not on the event loop."""


def _openstack_version(version: str) -> str:
    if version != "latest" and version not in content.OPENSTACK_VERSIONS:
        raise NotFound(f"OpenStack metadata version {version!r} does not exist; the versions "
                       "are listed at /openstack.")
    return version


def _text(lines: list[str]) -> tuple[bytes, str]:
    return "\n".join(lines).encode(), "text/plain"


async def _read_capped(request: Request, limit: int) -> bytes:
    """The body, but never more than ``limit`` bytes of it (a guest may send anything)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) >= limit:
        raise BadRequest(f"The body is {declared} bytes; at most {limit - 1} bytes are accepted.")
    data = b""
    async for chunk in request.stream():
        data += chunk
        if len(data) >= limit:
            break
    return data


routes = Routes()


@routes.add(("GET", "POST"), "/{path:path}")  # HEAD too; one route, so a 405 names all three
async def serve_path(req: Req, svc: MetadataService) -> Response:
    """Every metadata path: reads with GET or HEAD, the password with POST."""
    if req.request.method == "POST":
        return await post_path(req, svc)
    return await get_path(req, svc)


async def get_path(req: Req, svc: MetadataService) -> Response:
    """Any metadata file or listing (async: a cached answer needs no thread)."""
    request = req.request
    path = request.scope["path"]
    net, ip = svc.identify(request.headers)
    try:
        # Cached (or a path that needs no instance): answering takes microseconds,
        # so skip the thread hand-off. An entry expiring right now is only reloaded
        # in a thread.
        answer = svc.cached(net, ip, path)
    except _MustLoad:
        answer = Answer.of(*await run_in_threadpool(svc.get, net, ip, path))
    return Response(answer.body, media_type=answer.kind)


async def post_path(req: Req, svc: MetadataService) -> Response:
    """The guest's password (``/openstack/<version>/password``, once); elsewhere 405."""
    request = req.request
    net, ip = svc.identify(request.headers)
    body = await _read_capped(request, MAX_PASSWORD_BYTES + 1)
    await run_in_threadpool(svc.post, net, ip, request.url.path, body)
    return Response(b"", status_code=200, media_type="text/plain")


class WarmPath:
    """The service's ASGI app: a GET or HEAD that :meth:`MetadataService.kept` can answer
    (its three headers verified before, the instance fresh in the cache, the answer for
    its path kept with it) is answered here; every other request goes to ``app`` (the
    Starlette app with the routes, errors, request ids and access log).

    What a warm answer skips is Starlette's layers for one request (the error
    middlewares, the request-id middleware's wrapped ``send``, routing, ``Request`` and
    ``Response`` objects): half of the server's CPU time per request at 100 clients
    (issue 17, docs/performance.md). The answer is the same: the same body and headers,
    the caller's well-formed ``x-openstack-request-id`` or a new one, the same
    access-log line. A process draining for a restart answers the full way (its
    answers carry the draining header)."""

    def __init__(self, app: ASGIApp, service: MetadataService,
                 request_id_header: str = "x-openstack-request-id") -> None:
        self.app = app
        self.service = service
        self.request_id_header = request_id_header.encode()

    def answer_now(self, method: str, path: str, headers: list[tuple[bytes, bytes]],
                   client: tuple[str, int] | None
                   ) -> tuple[list[tuple[bytes, bytes]], bytes] | None:
        """The warm answer's response headers (the request id included) and body, its
        access-log line written; None when the request must go the full way. Called for
        each request (below), and by uvicorn's protocol while it parses the request
        (``common/httpproto.py``), without an ASGI task."""
        if method not in ("GET", "HEAD") or path == "/healthcheck" or longpoll.draining():
            return None
        started = time.perf_counter()
        ip = network = signature = None
        incoming = b""
        for name, value in headers:
            # the first of a repeated header, as the full path reads it (Starlette's
            # Headers.get); the last request id, as RequestIdMiddleware reads it
            if name == b"x-forwarded-for":
                if ip is None:
                    ip = value.decode("latin-1")
            elif name == b"x-stratus-network-id":
                if network is None:
                    network = value.decode("latin-1")
            elif name == b"x-stratus-signature":
                if signature is None:
                    signature = value.decode("latin-1")
            elif name == self.request_id_header:
                incoming = value
        answer = self.service.kept(ip, network, signature, path)
        if answer is None:
            return None
        request_id = incoming.decode("latin-1")
        if not REQUEST_ID_RE.match(request_id):
            request_id = new_request_id()
        ACCESS_LOG.info('%s "%s %s" %d %.1fms %s', (client or ("-", 0))[0], method, path, 200,
                        (time.perf_counter() - started) * 1000, request_id)
        return [*answer.headers, (self.request_id_header, request_id.encode())], answer.body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            found = self.answer_now(scope["method"], scope["path"], scope["headers"],
                                    scope.get("client"))
            if found is not None:
                await send({"type": "http.response.start", "status": 200, "headers": found[0]})
                await send({"type": "http.response.body", "body": found[1]})
                return
        await self.app(scope, receive, send)


def build_app(service: MetadataService, on_shutdown: list[Callable[[], Any]] | None = None
              ) -> WarmPath:
    router = Router()
    router.include(routes, service)
    return WarmPath(create_app("metadata", router.routes, nova_error, on_shutdown=on_shutdown),
                    service)


def build_service(config: Config) -> tuple[MetadataService, ApiClient]:
    secret = config.get(SECTION, "shared_secret")
    auth = PasswordAuth(
        config.get(SECTION, "identity_url"),
        config.get(SECTION, "username"),
        config.get(SECTION, "password"),
        config.get(SECTION, "project_name"),
        timeout=float(config.get(SECTION, "compute_timeout")),
    )
    client = ApiClient(config.get(SECTION, "compute_url"), auth,
                       timeout=float(config.get(SECTION, "compute_timeout")), service="compute")
    settings = Settings(
        shared_secret=secret,
        cache_ttl=float(config.get(SECTION, "cache_ttl")),
        negative_cache_ttl=float(config.get(SECTION, "negative_cache_ttl")),
        cache_max_entries=config.get_int(SECTION, "cache_max_entries", minimum=1),
    )
    return MetadataService(ComputeSource(client), settings), client


def create_app_from_config() -> WarmPath:
    """uvicorn factory: reads the configuration named by STRATUS_CONFIG_FILE."""
    config = Config.load()
    setup_logging(config.get_bool("DEFAULT", "debug"))
    service, client = build_service(config)
    return build_app(service, on_shutdown=[client.close])


def _check(config: Config) -> None:
    """Fail fast on a bad setting (an empty secret included) before uvicorn starts."""
    _service, client = build_service(config)
    client.close()
    for key in ("cache_ttl", "negative_cache_ttl", "compute_timeout"):
        if float(config.get(SECTION, key)) < 0:
            raise ConfigError(f"setting [{SECTION}] {key} must not be negative")


def main(argv: list[str] | None = None) -> int:
    return run_service("stratus-metadata", (__doc__ or "").split("\n")[0], SECTION,
                       "stratus.metadata.app:create_app_from_config", _check, argv)
