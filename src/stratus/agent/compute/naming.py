"""What the compute agent names on its host, and which host objects are its own (issue 16).

Several deploys may share a host (a user's cloud and the test suite's deploys): each has a
deploy prefix (``[DEFAULT] deploy_prefix``, ``^[a-z][a-z0-9]{0,3}$``) and the compute agent
creates and touches only objects that carry its own:

* libvirt domains: ``<domain_prefix><server id>``, ``domain_prefix`` by default
  ``<deploy prefix>-instance-``; a domain is this agent's only when it has that name, the
  server id in Stratus's metadata element matches the name, and its disks live under this
  agent's ``instances_path`` (:func:`server_of_domain`);
* taps: :func:`stratus.contracts.network.tap_name` of the deploy prefix and the port id, the
  name the network agent of the same deploy plugs;
* libvirt secrets (volume credentials): usage name ``<deploy prefix>-<kind>-<id>``
  (:func:`secret_usage`, :func:`owns_secret`); teardown undefines only those.

An object with another prefix, or with none, is never changed or removed.
"""

from __future__ import annotations

from pathlib import Path

from stratus.contracts.network import check_deploy_prefix, tap_name

DOMAIN_KIND = "instance-"


def default_domain_prefix(deploy_prefix: str) -> str:
    """``<deploy prefix>-instance-``: two deploys never share domain names."""
    return f"{check_deploy_prefix(deploy_prefix)}-{DOMAIN_KIND}"


def domain_prefix(configured: str, deploy_prefix: str) -> str:
    """``[compute_agent] domain_prefix`` when set, else :func:`default_domain_prefix`."""
    return configured or default_domain_prefix(deploy_prefix)


def tap(deploy_prefix: str, port_id: str) -> str:
    """The tap of an instance port (the domain XML's target dev, plugged by the network
    agent of the same deploy)."""
    return tap_name(deploy_prefix, port_id)


def server_of_domain(name: str, server_id: str | None, xml_text: str, *, prefix: str,
                     instances_path: str | Path) -> str | None:
    """The server id when the domain ``name`` is this agent's, else None.

    ``server_id`` is the id in the domain's Stratus metadata element (None: not Stratus's);
    the domain must be named ``<prefix><server id>`` and name a file under
    ``instances_path`` (its disks, console log), so a domain of another deploy that happens
    to share the prefix is still not touched."""
    if not prefix or not name.startswith(prefix) or not server_id:
        return None
    if name != f"{prefix}{server_id}":
        return None
    if f"{Path(instances_path)}/{server_id}/" not in xml_text:
        return None
    return server_id


def secret_usage(deploy_prefix: str, kind: str, resource_id: str) -> str:
    """The usage name of a libvirt secret this deploy defines, e.g. ``st-volume-<id>``."""
    if not kind or not kind.isalnum():
        raise ValueError(f"secret kind {kind!r} must be letters and digits")
    return f"{check_deploy_prefix(deploy_prefix)}-{kind}-{resource_id}"


def owns_secret(usage: str | None, deploy_prefix: str) -> bool:
    """Whether a libvirt secret with this usage name is this deploy's (and may be removed)."""
    return bool(usage) and str(usage).startswith(f"{check_deploy_prefix(deploy_prefix)}-")
