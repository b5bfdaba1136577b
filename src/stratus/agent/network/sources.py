"""Where the network agent's desired state comes from and where its reports go.

The agent reads one :class:`~stratus.contracts.network.HostState` per pass from a
:class:`StateSource`: a JSON file (:class:`JsonFileSource`), a fixed state
(:class:`StaticSource`, tests and benchmarks) or the network API
(:class:`HttpSource`, the deployed case). The API source is also the agent's
:class:`HostReporter` (registration, port statuses) and a :class:`WatchableSource`
(long-poll on the state generation, through ``ApiClient.long_poll``). Its HTTP goes
through the one client of Stratus, :class:`stratus.common.clients.ApiClient`; every
failure becomes a :class:`~stratus.agent.network.drivers.base.DriverError` saying
whether a retry can help.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

import httpx

from stratus.agent.network.drivers.base import DriverError
from stratus.common.clients import MAX_LONG_POLL as MAX_LONG_POLL  # the API's cap
from stratus.common.clients import ApiClient, Auth, ServiceError
from stratus.contracts.network import HostRegistration, HostState, PortStatusReport

_ANY_STATUS = range(100, 600)  # statuses are judged here, with the agent's own wording


class StateSource(Protocol):
    """Where the desired state comes from (a JSON file, a fixed state, the network API)."""

    def get(self) -> HostState: ...


class WatchableSource(Protocol):
    """A source that can tell when the desired state changed (the network API)."""

    generation: int | None  # of the state last returned by ``get``

    def get(self) -> HostState: ...

    def watch(self, since: int, timeout: float) -> int | None:
        """Block until the generation differs from ``since`` (then return it) or
        ``timeout`` seconds passed (then return ``since``); None: no generations here."""
        ...


class HostReporter(Protocol):
    """Where the agent registers its host and reports its ports' status (the network API)."""

    def register(self) -> None: ...

    def report_ports(self, active: list[str], down: list[str]) -> None: ...


class JsonFileSource:
    """Reads the desired state from a JSON file (tests, or a state dropped by hand)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def get(self) -> HostState:
        try:
            text = self.path.read_text()
        except OSError as exc:
            raise DriverError(f"cannot read desired state {self.path}: {exc}",
                              temporary=True) from None
        return HostState.from_json(text)


class StaticSource:
    """A fixed in-memory desired state (unit tests, benchmarks)."""

    def __init__(self, state: HostState):
        self.state = state

    def get(self) -> HostState:
        return self.state


class HttpSource:
    """GETs the desired state from the network API (``network_state_url`` with
    ``{host}`` substituted), authenticated with a token from ``auth`` when given.
    The body is the :class:`HostState` document, bare or as ``{"host_state": {...}}``.

    It is also the agent's :class:`HostReporter`: the same API (the part of the URL
    before ``/v2.0/``) takes the host's registration and its port statuses."""

    def __init__(self, url: str, host: str, auth: Auth | None = None,
                 timeout: float = 10.0, underlay_ip: str | None = None,
                 network_node: bool = False, l2_backend: str | None = None):
        self.url = url.replace("{host}", host)
        self.host = host
        self.timeout = timeout
        self.registration = HostRegistration(underlay_ip=underlay_ip or None,
                                             network_node=network_node, l2_backend=l2_backend)
        base = self.url.split("/v2.0/", 1)[0] if "/v2.0/" in self.url else self.url
        self.host_url = f"{base.rstrip('/')}/v2.0/stratus-agent/hosts/{quote(host, safe='')}"
        # The loop's calls and the watcher's long-poll each have their own connections.
        self.api = ApiClient(base, auth, timeout=timeout, service="network API")
        self._watch_api = ApiClient(base, auth, timeout=timeout, service="network API")
        self.generation: int | None = None
        self._lock = threading.Lock()
        self._prefetched: dict[str, Any] | None = None  # a changed state a watch brought

    @property
    def underlay_ip(self) -> str | None:
        return self.registration.underlay_ip

    @property
    def network_node(self) -> bool:
        return self.registration.network_node

    def _call(self, method: str, url: str, body: object = None) -> httpx.Response:
        return self._judge(method, url, lambda: self.api.request(
            method, url, json=body, ok=_ANY_STATUS))

    @staticmethod
    def _judge(method: str, url: str, send: Callable[[], httpx.Response]) -> httpx.Response:
        """The answer of ``send()``, or a :class:`DriverError` in the agent's wording."""
        try:
            resp = send()
        except ServiceError as exc:  # no answer, or identity refused the service user
            raise DriverError(str(exc), temporary=exc.temporary) from None
        if resp.status_code >= 500:
            raise DriverError(f"network API answered {resp.status_code}", temporary=True)
        if not resp.is_success:
            raise DriverError(f"network API answered {resp.status_code} to {method} {url}: "
                              f"{resp.text[:200]}")
        return resp

    @staticmethod
    def _document(resp: httpx.Response) -> Any:
        try:
            data = resp.json()
        except ValueError:
            raise DriverError("the network API answered a state that is not JSON") from None
        if isinstance(data, dict) and isinstance(data.get("host_state"), dict):
            data = data["host_state"]
        return data

    @staticmethod
    def _generation(data: Any) -> int | None:
        gen = data.get("generation") if isinstance(data, dict) else None
        return gen if isinstance(gen, int) and not isinstance(gen, bool) else None

    def get(self) -> HostState:
        with self._lock:
            data, self._prefetched = self._prefetched, None
        if data is None:
            data = self._document(self._call("GET", self.url))
        state = HostState.from_dict(data)
        self.generation = state.generation
        return state

    def watch(self, since: int, timeout: float) -> int | None:
        """Long-poll the state URL with ``since``/``wait``; a changed state is kept for the
        next ``get``. None when the API sends no generation (it cannot long-poll)."""
        # The state URL may carry its own query (``?host=...``): long_poll keeps it.
        resp = self._judge("GET", self.url, lambda: self._watch_api.long_poll(
            self.url, since, timeout, ok=_ANY_STATUS))
        data = self._document(resp)
        gen = self._generation(data)
        if gen is not None and gen != since:
            with self._lock:
                self._prefetched = data
        return gen

    def register(self) -> None:
        self._call("PUT", self.host_url, self.registration.to_body())

    def report_ports(self, active: list[str], down: list[str]) -> None:
        report = PortStatusReport(active=sorted(active), down=sorted(down))
        self._call("PUT", self.host_url + "/ports", report.to_body())
