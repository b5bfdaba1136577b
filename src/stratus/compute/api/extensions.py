"""``GET /v2.1/extensions`` and ``/v2.1/extensions/{alias}``: Nova still answers its
old extension list (every v2.1 feature under its former extension alias). Stratus lists
only the aliases whose API it serves, each with a sentence of its own saying what that
is here; an alias Stratus does not serve (rescue, shelve, evacuate, ...) is a 404 as an
unknown one is."""

from __future__ import annotations

from typing import Any

from stratus.common.app import Req, Routes
from stratus.common.errors import NotFound
from stratus.compute.core import ComputeCore

routes = Routes()
P = "/v2.1/extensions"
# Nova gives every entry this namespace and date (the list is frozen since v2.1).
NAMESPACE = "http://docs.openstack.org/compute/ext/fake_xml"
UPDATED = "2014-12-03T00:00:00Z"
# (alias, name, what Stratus serves under it)
EXTENSIONS: tuple[tuple[str, str, str], ...] = (
    ("os-access-ips", "AccessIPs", "accessIPv4 and accessIPv6 of a server, kept as given."),
    ("os-admin-actions", "AdminActions", "The admin server actions os-resetState and "
     "injectNetworkInfo."),
    ("os-aggregates", "Aggregates", "Host aggregates, their hosts, metadata and "
     "availability zones."),
    ("os-attach-interfaces", "AttachInterfaces", "Attach and detach ports of a running "
     "server (os-interface)."),
    ("os-availability-zone", "AvailabilityZone", "Availability zones of the compute hosts."),
    ("os-config-drive", "ConfigDrive", "A config drive for the guest at create."),
    ("os-console-auth-tokens", "ConsoleAuthTokens", "Look up what a console token "
     "connects to (admins)."),
    ("os-console-output", "ConsoleOutput", "The tail of a server's serial console."),
    ("os-consoles", "Consoles", "Interactive (VNC) consoles of servers."),
    ("os-create-backup", "CreateBackup", "The createBackup action with rotation."),
    ("os-deferred-delete", "DeferredDelete", "The restore and forceDelete actions "
     "(deletes are never deferred here)."),
    ("OS-DCF", "DiskConfig", "OS-DCF:diskConfig of a server, kept as given."),
    ("OS-EXT-AZ", "ExtendedAvailabilityZone", "A server's availability zone in its view."),
    ("OS-EXT-IPS", "ExtendedIps", "Whether a server address is fixed or floating."),
    ("OS-EXT-IPS-MAC", "ExtendedIpsMac", "The MAC address of each server address."),
    ("OS-EXT-SRV-ATTR", "ExtendedServerAttributes", "A server's host, instance name and "
     "more for admins."),
    ("OS-EXT-STS", "ExtendedStatus", "A server's vm_state, task_state and power_state."),
    ("os-extended-volumes", "ExtendedVolumes", "The volumes attached to a server in its "
     "view."),
    ("os-flavor-access", "FlavorAccess", "Private flavors and the projects that may use "
     "them."),
    ("OS-FLV-EXT-DATA", "FlavorExtraData", "A flavor's ephemeral disk size."),
    ("os-flavor-extra-specs", "FlavorExtraSpecs", "Flavor extra specs."),
    ("os-flavor-manage", "FlavorManage", "Creating and deleting flavors (admins)."),
    ("os-floating-ip-pools", "FloatingIpPools", "External networks as floating IP pools "
     "(a proxy to the network API)."),
    ("os-floating-ips", "FloatingIps", "Floating IPs (a proxy to the network API) and "
     "the addFloatingIp/removeFloatingIp actions."),
    ("os-hosts", "Hosts", "The compute hosts and their resources (admins)."),
    ("os-hypervisors", "Hypervisors", "Hypervisors, their resources, servers and uptime "
     "(admins)."),
    ("os-instance-actions", "InstanceActions", "The recorded actions of a server and "
     "their events."),
    ("os-instance_usage_audit_log", "OSInstanceUsageAuditLog", "The usage audit log "
     "(no periodic audit runs here)."),
    ("os-keypairs", "Keypairs", "SSH and x509 key pairs."),
    ("os-lock-server", "LockServer", "The lock and unlock server actions."),
    ("os-migrations", "Migrations", "The resizes of servers (admins)."),
    ("os-multinic", "Multinic", "The addFixedIp and removeFixedIp actions."),
    ("os-multiple-create", "MultipleCreate", "min_count and max_count at create."),
    ("os-networks", "Networks", "Networks (a proxy to the network API)."),
    ("os-pause-server", "PauseServer", "The pause and unpause server actions."),
    ("os-quota-class-sets", "QuotaClasses", "The default quota class."),
    ("os-quota-sets", "Quotas", "Project quotas."),
    ("os-remote-consoles", "RemoteConsoles", "VNC console URLs of servers."),
    ("OS-SCH-HNT", "SchedulerHints", "Scheduler hints at create (group, same_host, "
     "different_host)."),
    ("os-security-groups", "SecurityGroups", "Security groups (a proxy to the network "
     "API) and those of a server."),
    ("os-server-diagnostics", "ServerDiagnostics", "What is known of a server's guest "
     "(admins)."),
    ("os-server-external-events", "ServerExternalEvents", "Events from other services "
     "(admins)."),
    ("os-server-groups", "ServerGroups", "Server groups with affinity policies."),
    ("os-server-password", "ServerPassword", "The password a guest posted to the "
     "metadata service."),
    ("os-server-start-stop", "ServerStartStop", "The os-start and os-stop server "
     "actions."),
    ("OS-SRV-USG", "ServerUsage", "When a server was launched and terminated."),
    ("os-services", "Services", "The compute services, enabling and disabling hosts."),
    ("os-simple-tenant-usage", "SimpleTenantUsage", "Per-project usage over a time "
     "window."),
    ("os-suspend-server", "SuspendServer", "The suspend and resume server actions."),
    ("os-tenant-networks", "OSTenantNetworks", "The project's networks (a proxy to the "
     "network API)."),
    ("os-used-limits", "UsedLimits", "Quota usage in the limits."),
    ("os-user-data", "UserData", "User data at create and rebuild."),
    ("os-volumes", "Volumes", "Volumes and snapshots (a proxy to the volume API) and "
     "volume attachments of servers."),
)


def extension(alias: str, name: str, description: str) -> dict[str, Any]:
    return {"alias": alias, "name": name, "description": description,
            "namespace": NAMESPACE, "updated": UPDATED, "links": []}


@routes.add("GET", P)
def list_extensions(req: Req, svc: ComputeCore) -> dict[str, Any]:
    return {"extensions": [extension(*row) for row in EXTENSIONS]}


@routes.add("GET", P + "/{alias}")
def show_extension(req: Req, svc: ComputeCore) -> dict[str, Any]:
    alias = req.params["alias"]
    for row in EXTENSIONS:
        if row[0] == alias:
            return {"extension": extension(*row)}
    raise NotFound(f"Extension {alias} could not be found (this cloud does not serve it).")
