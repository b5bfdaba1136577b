"""The API extensions this Neutron-compatible service has (``/v2.0/extensions``)."""

from __future__ import annotations

from typing import Any

from stratus.common.app import Req, Routes
from stratus.common.errors import NotFound
from stratus.network.core import NetworkCore

routes = Routes()

EXTENSIONS = [
    ("external-net", "Neutron external network", "Adds external network attribute."),
    ("provider", "Provider Network", "Expose mapping of virtual networks to physical networks"),
    ("network-mtu", "Network MTU", "Provides MTU attribute for a network resource."),
    ("port-security", "Port Security", "Provides port security"),
    ("router", "Neutron L3 Router", "Router abstraction for basic L3 forwarding"),
    ("ext-gw-mode", "Neutron L3 Configurable external gateway mode",
     "Extension of the router abstraction for specifying whether SNAT should occur."),
    ("security-group", "security-group", "The security groups extension."),
    ("security-groups-normalized-cidr", "Security Group Rule normalized CIDR",
     "A rule's normalized_cidr: the network its remote_ip_prefix means."),
    ("allowed-address-pairs", "Allowed Address Pairs", "Provides allowed address pairs"),
    ("binding", "Port Binding", "Expose port bindings of a virtual port to external application"),
    ("quotas", "Quota management support", "Expose functions for quotas management per project"),
    ("quota_details", "Quota details management support",
     "Expose functions for quotas usage statistics per project"),
    ("standard-attr-description", "standard-attr-description",
     "Extension to add descriptions to standard attributes"),
    ("standard-attr-timestamp", "Resource timestamps",
     "Adds created_at and updated_at fields to all Neutron resources that have Neutron "
     "standard attributes."),
    ("standard-attr-revisions", "Resource revision numbers",
     "This extension will display the revision number of neutron resources."),
    ("pagination", "Pagination support", "Extension that indicates that pagination is enabled."),
    ("sorting", "Sorting support", "Extension that indicates that sorting is enabled."),
    ("fip-port-details", "Floating IP Port Details Extension",
     "Add port_details attribute to Floating IP resource"),
    ("subnet_allocation", "Subnet Allocation",
     "Subnets take their CIDR from a subnet pool (subnetpool_id, prefixlen)."),
    ("default-subnetpools", "Default Subnetpools",
     "A subnet pool can be the default of its IP family (use_default_subnetpool)."),
    ("subnet-external-network", "Subnet belongs to an external network",
     "A subnet shows router:external: whether its network is external."),
    ("agent", "agent", "Lists, shows, updates and deletes the network agents."),
    ("l3_agent_scheduler", "L3 Agent Scheduler", "Which L3 agents host a router."),
    ("dhcp_agent_scheduler", "DHCP Agent Scheduler", "Which DHCP agents serve a network."),
    ("extraroute", "Neutron Extra Route", "Static routes of a router (its routes attribute)."),
    ("extraroute-atomic", "Atomically add/remove extra routes",
     "add_extraroutes and remove_extraroutes change a router's routes atomically."),
    ("extra_dhcp_opt", "Neutron Extra DHCP options",
     "A port's extra DHCP options (extra_dhcp_opts), served by the network's DHCP server."),
    ("stratus-host-state", "Stratus host desired state",
     "Admin-only GET /v2.0/stratus/host-state?host=<name>: everything a host's network agent "
     "must converge to (Stratus extension)."),
]


def extension(alias: str, name: str, description: str) -> dict[str, Any]:
    return {"alias": alias, "name": name, "description": description,
            "updated": "2026-11-21T00:00:00-00:00", "links": []}


@routes.add("GET", "/v2.0/extensions")
def list_extensions(req: Req, svc: NetworkCore) -> dict[str, Any]:
    _ = req.ctx
    return {"extensions": [extension(*e) for e in EXTENSIONS]}


@routes.add("GET", "/v2.0/extensions/{alias}")
def show_extension(req: Req, svc: NetworkCore) -> dict[str, Any]:
    _ = req.ctx
    for e in EXTENSIONS:
        if e[0] == req.params["alias"]:
            return {"extension": extension(*e)}
    raise NotFound(f"Extension with alias {req.params['alias']} does not exist")
