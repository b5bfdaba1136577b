"""The compute agent's side of the APIs it talks to.

Three small interfaces (:class:`ComputeApi`, :class:`ImageApi`,
:class:`NetworkApi`; fakes implement them in the unit tests) and their HTTP
implementations over the one client of Stratus,
:class:`stratus.common.clients.ApiClient` (the assignments through its
``long_poll``). What crosses the wire to the compute
API is typed in :mod:`stratus.contracts.compute`: the agent reads an
:class:`~stratus.contracts.compute.AssignmentSet` and sends
:class:`~stratus.contracts.compute.ServerReport` and
:class:`~stratus.contracts.compute.HostResources`. A failure is a
:class:`~stratus.common.clients.ServiceError` (``temporary`` when a retry can
help); an assignment document of the wrong shape is one too (status 502).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Protocol

from stratus.agent.images import HttpImageApi as HttpImageApi  # the ImageApi over HTTP
from stratus.common.clients import ApiClient, Auth, ServiceError
from stratus.contracts.compute import AssignmentSet, ContractError, HostResources, ServerReport

LOG = logging.getLogger(__name__)


class ComputeApi(Protocol):
    def assignments(self, wait: float | None = None, since: int | None = None
                    ) -> AssignmentSet: ...

    def report(self, server_id: str, report: ServerReport) -> None: ...

    def heartbeat(self, resources: HostResources) -> None: ...


class ImageApi(Protocol):
    def fetch(self, image_id: str) -> Iterator[bytes]: ...

    def upload(self, image_id: str, path: str) -> None: ...


class NetworkApi(Protocol):
    def port_status(self, port_id: str) -> str: ...

    def wait_active(self, port_id: str, timeout: float) -> str:
        """The port's status once ACTIVE, or after at most ``timeout`` seconds."""
        ...


class HttpComputeApi:
    """The agent endpoints of the compute API for one host (docs/compute.md)."""

    def __init__(self, url: str, host: str, auth: Auth | None):
        self.client = ApiClient(url, auth, timeout=60.0, service="compute")
        self.host = host

    def assignments(self, wait: float | None = None, since: int | None = None
                    ) -> AssignmentSet:
        # Whole seconds, as this agent always sent (a plain GET without since or a wait).
        doc = self.client.long_poll(f"stratus/compute-hosts/{self.host}/servers", since,
                                    int(wait or 0)).json()
        try:
            return AssignmentSet.from_dict(doc)
        except ContractError as exc:
            raise ServiceError(f"compute answered the assignments of host {self.host} with "
                               f"a document the agent cannot read: {exc}", status=502,
                               temporary=True) from None

    def report(self, server_id: str, report: ServerReport) -> None:
        self.client.post(f"stratus/compute-hosts/{self.host}/servers/{server_id}/report",
                         json=report.to_dict())

    def heartbeat(self, resources: HostResources) -> None:
        self.client.put(f"stratus/compute-hosts/{self.host}", json={"host": resources.to_dict()})


class HttpNetworkApi:
    """A port's status (the agent starts a guest once its ports are ACTIVE).

    :meth:`wait_active` long-polls ``GET /v2.0/stratus-agent/ports/{id}/status?wait=``
    (``stratus.network.api.port_wait``): the answer comes the moment the network agent
    reports the port ACTIVE. A network API without that route (an older release during
    an upgrade) is asked for the port once per call instead."""

    def __init__(self, url: str, auth: Auth | None):
        self.client = ApiClient(url, auth, timeout=30.0, service="network")
        self.can_wait = True

    def port_status(self, port_id: str) -> str:
        return str(self.client.get(f"v2.0/ports/{port_id}")["port"].get("status", ""))

    def wait_active(self, port_id: str, timeout: float) -> str:
        if self.can_wait:
            try:
                resp = self.client.long_poll(f"v2.0/stratus-agent/ports/{port_id}/status",
                                             0, timeout)
                return str(resp.json()["port"].get("status", ""))
            except ServiceError as exc:
                if exc.status not in (404, 405):
                    raise
            status = self.port_status(port_id)  # raises when the port itself is gone
            self.can_wait = False
            LOG.info("the network API cannot wait for a port's status: asking for it instead")
            return status
        return self.port_status(port_id)
