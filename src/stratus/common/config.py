"""Service configuration: /etc/stratus/stratus.conf (INI, one section per service).
(Over 500 lines: most of it is the DEFAULTS table, every setting with its help, in one
place so that the docs and the strict parser read the same table.)

The file path comes from ``--config-file``, else ``STRATUS_CONFIG_FILE``, else
``/etc/stratus/stratus.conf``. Any single setting can be overridden from the
environment as ``STRATUS_<SECTION>__<KEY>`` (for example
``STRATUS_IDENTITY__DATABASE_URL``), which is how tests point a service at a
temporary database. A key a section does not set falls back to ``[DEFAULT]``:
``STRATUS_DEFAULT__<KEY>``, then the file's ``[DEFAULT]``, then the documented
default in ``DEFAULTS``.

``Config.load`` is strict: a missing file, an unknown section or key (in the
file or in a ``STRATUS_<SECTION>__<KEY>`` variable) raises :class:`ConfigError`
with one line naming the file, the key and the nearest valid key, so a
misspelled setting stops the service at start instead of falling back to a
default. A section accepts its own keys and the ``[DEFAULT]`` ones;
``[DEFAULT]`` accepts any known key (it is the fallback of every section).
"""

from __future__ import annotations

import configparser
import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_CONFIG_FILE = "/etc/stratus/stratus.conf"

# section -> key -> (default, help). The README's settings table is generated from this.
DEFAULTS: dict[str, dict[str, tuple[str, str]]] = {
    "DEFAULT": {
        "debug": ("false", "Log at DEBUG level and include tracebacks in the log."),
        "state_path": ("/var/lib/stratus", "Directory for service state (SQLite files, stores)."),
        "policy_file": (
            "",
            "Policy overrides (rule name: check) read by every API service at start; empty "
            "or a missing file: none (docs/security.md). A service's own section may name "
            "another.",
        ),
        "identity_url": (
            "http://127.0.0.1:5000/v3",
            "Where services other than identity validate tokens (the internal identity URL).",
        ),
        "region_name": ("RegionOne", "Region this deployment registers its endpoints in."),
        "tls_cert_file": (
            "",
            "PEM certificate (chain) an API service serves https with; empty: plain http "
            "(docs/security.md, TLS). A service's own section may name another.",
        ),
        "tls_key_file": ("", "PEM private key of tls_cert_file (0640 root:stratus)."),
        "tls_ca_file": (
            "",
            "PEM CA bundle this process verifies the other services' https with (every "
            "httpx client and the metadata proxies); empty: the system's trust store.",
        ),
        "deploy_prefix": (
            "st",
            "This deploy's short id (^[a-z][a-z0-9]{0,3}$): every host object the agents "
            "create carries it (namespaces, bridges, taps, OVS ports, nft tables, "
            "processes), and they touch nothing else, so two deploys share a host.",
        ),
    },
    "identity": {
        "bind_host": ("0.0.0.0", "Address the identity API listens on."),
        "bind_port": ("5000", "Port the identity API listens on."),
        "public_url": (
            "",
            "Base URL used in links and version documents; empty: taken from each request.",
        ),
        "database_url": (
            "sqlite:////var/lib/stratus/identity.sqlite",
            "SQLAlchemy URL of the identity database (sqlite:/// or postgresql+psycopg://).",
        ),
        "fernet_key_repository": (
            "/etc/stratus/fernet-keys",
            "Directory holding the Fernet token keys (0 = staged, highest = primary).",
        ),
        "fernet_max_active_keys": (
            "3",
            "Keys kept after a rotation (staged + primary + secondaries); at least 2.",
        ),
        "token_expiration": ("3600", "Token lifetime in seconds."),
        "password_hash_algorithm": (
            "argon2id",
            "Password hash for new passwords: argon2id | bcrypt.",
        ),
        "lockout_failure_attempts": (
            "0",
            "Wrong passwords in a row that lock a user out (Keystone's "
            "lockout_failure_attempts); 0: never locked.",
        ),
        "lockout_duration": (
            "1800",
            "Seconds a locked-out user stays locked; an admin unlocks earlier by "
            "updating the user with enabled=true.",
        ),
        "password_min_length": ("0", "Shortest password accepted when one is set; 0: any."),
        "password_regex": (
            "",
            "Regular expression a new password must match in full; empty: any.",
        ),
        "password_regex_description": (
            "",
            "What password_regex asks for, in words: the 400 answer says it.",
        ),
        "unique_last_password_count": (
            "0",
            "A new password must differ from the user's last N passwords; 0: no history.",
        ),
        "password_expires_days": (
            "0",
            "Days a password stays valid after it is set (Keystone's password_expires_days); "
            "0: never expires. A user's option ignore_password_expiry exempts it.",
        ),
        "workers": ("1", "Number of uvicorn worker processes."),
        "token_cache_seconds": (
            "5",
            "How long a validated token is cached in a service's auth middleware.",
        ),
        "validation_cache_seconds": (
            "30",
            "Identity's own cache of validated tokens: the longest a change that revokes "
            "nothing (a grant, a rename, the catalog) made by another worker process takes "
            "to show in this one's validations; revocations and this process's changes show "
            "at once; 0: no cache.",
        ),
    },
    "image": {
        "bind_host": ("0.0.0.0", "Address the image API listens on."),
        "bind_port": ("9292", "Port the image API listens on."),
        "public_url": (
            "",
            "Base URL used in links and version documents; empty: taken from each request.",
        ),
        "database_url": (
            "sqlite:////var/lib/stratus/image.sqlite",
            "SQLAlchemy URL of the image database (sqlite:/// or postgresql+psycopg://).",
        ),
        "workers": ("1", "Number of uvicorn worker processes."),
        "images_dir": (
            "/var/lib/stratus/images",
            "The content-addressed image store (blobs/, tmp/); on the controller's disk. "
            "With store = object only tmp/: uploads are received and inspected there.",
        ),
        "store": (
            "file",
            "Where image data is kept: file (images_dir) | object (object storage, a "
            "container of this service's account; docs/object-storage.md).",
        ),
        "object_url": (
            "",
            "With store = object: base URL of stratus-object (without /v1).",
        ),
        "object_container": ("images", "With store = object: the container of image data."),
        "username": ("", "With store = object: service user of the image service."),
        "password": ("", "Password of that user."),
        "project_name": (
            "service",
            "Project of that user: its account AUTH_<project id> holds the image data.",
        ),
        "max_image_size": (
            "1099511627776",
            "Largest image in bytes (default 1 TiB); a bigger upload is refused with 413.",
        ),
        "quota_images_per_project": (
            "1000",
            "Images a project may own (0: no limit); one more is refused with 413.",
        ),
        "quota_bytes_per_project": (
            "0",
            "Total bytes of image data a project may store (0: no limit); 413 beyond it.",
        ),
        "disk_formats": (
            "raw,qcow2,vmdk,iso",
            "Disk formats accepted, a subset of raw, qcow2, vmdk, iso.",
        ),
        "container_formats": (
            "bare,ovf",
            "Container formats accepted, a subset of bare, ovf (the data is inspected as is).",
        ),
        "qemu_img": ("qemu-img", "The qemu-img program that inspects every upload."),
        "inspect_cpu_seconds": (
            "30",
            "CPU-time limit (RLIMIT_CPU) of one qemu-img run inspecting an upload.",
        ),
        "inspect_memory_mb": (
            "1024",
            "Address-space limit (RLIMIT_AS) in MiB of one qemu-img run inspecting an upload.",
        ),
    },
    "network": {
        "bind_host": ("0.0.0.0", "Address the network API listens on."),
        "bind_port": ("9696", "Port the network API listens on."),
        "public_url": (
            "",
            "Base URL used in links and version documents; empty: taken from each request.",
        ),
        "database_url": (
            "sqlite:////var/lib/stratus/network.sqlite",
            "SQLAlchemy URL of the network database (sqlite:/// or postgresql+psycopg://).",
        ),
        "workers": ("1", "Number of uvicorn worker processes."),
        "tenant_network_type": (
            "vxlan",
            "Type of the networks tenants create without provider options: vxlan | gre.",
        ),
        "vxlan_vni_ranges": (
            "1:1000",
            "VXLAN IDs given to tenant networks, as comma-separated first:last ranges.",
        ),
        "gre_id_ranges": (
            "1:1000",
            "GRE keys given to tenant networks, as comma-separated first:last ranges.",
        ),
        "flat_networks": (
            "*",
            "Physical networks flat networks may use (comma-separated; * allows any name).",
        ),
        "physical_mtu": ("1500", "MTU of the underlay and of the physical networks."),
        "vxlan_overhead": ("50", "Bytes a VXLAN tunnel adds (IPv4 underlay): mtu = physical - 50."),
        "gre_overhead": ("42", "Bytes a GRE tunnel adds (IPv4 underlay): mtu = physical - 42."),
        "base_mac": (
            "fa:16:3e:00:00:00",
            "Port MACs keep the first three bytes of this and get three random ones.",
        ),
        "max_dns_nameservers": ("5", "Most DNS servers a subnet may list."),
        "max_host_routes": ("20", "Most host routes a subnet may list."),
        "quota_network": ("100", "Default networks per project (-1: unlimited)."),
        "quota_subnet": ("100", "Default subnets per project (-1: unlimited)."),
        "quota_port": ("500", "Default ports per project (-1: unlimited)."),
        "quota_router": ("10", "Default routers per project (-1: unlimited)."),
        "quota_floatingip": ("50", "Default floating IPs per project (-1: unlimited)."),
        "quota_security_group": ("10", "Default security groups per project (-1: unlimited)."),
        "quota_security_group_rule": (
            "100",
            "Default security group rules per project (-1: unlimited).",
        ),
        "recovery_interval": (
            "60",
            "Seconds between two checks for ports, IPs and router interfaces without their "
            "owner (docs/crash-recovery.md); the check also runs at start.",
        ),
    },
    "compute": {
        "bind_host": ("0.0.0.0", "Address the compute API listens on."),
        "bind_port": ("8774", "Port the compute API listens on."),
        "public_url": (
            "",
            "Base URL used in links and version documents; empty: taken from each request.",
        ),
        "database_url": (
            "sqlite:////var/lib/stratus/compute.sqlite",
            "SQLAlchemy URL of the compute database (sqlite:/// or postgresql+psycopg://).",
        ),
        "workers": ("1", "Number of uvicorn worker processes."),
        "username": ("", "Service user of the compute API (port binding, lookups)."),
        "password": ("", "Password of that user."),
        "project_name": ("service", "Project the compute API's service token is scoped to."),
        "image_url": ("http://127.0.0.1:9292", "Image API (Glance v2) base URL."),
        "network_url": ("http://127.0.0.1:9696", "Network API (Neutron v2.0) base URL."),
        "volume_url": (
            "",
            "Volume API (Cinder v3) base URL, without /v3; empty: the catalog's block-storage.",
        ),
        "cpu_allocation_ratio": ("4.0", "Virtual CPUs the scheduler places per host CPU."),
        "ram_allocation_ratio": ("1.0", "Guest RAM the scheduler places per MiB of host RAM."),
        "disk_allocation_ratio": ("1.0", "Guest disk the scheduler places per GiB of host disk."),
        "reserved_host_memory_mb": ("512", "Host RAM (MiB) the scheduler never gives to guests."),
        "scheduler_weigher": ("spread", "Host weigher: spread (most free RAM) | pack (least)."),
        "scheduler_max_attempts": (
            "3",
            "Hosts a server may try (first placement plus agent reschedules) before ERROR.",
        ),
        "service_down_time": (
            "60",
            "Seconds after the last heartbeat when a compute host counts as down.",
        ),
        "default_availability_zone": ("nova", "Availability zone of hosts and servers."),
        "quota_instances": ("10", "Default servers per project (-1: unlimited)."),
        "quota_cores": ("20", "Default vCPUs per project (-1: unlimited)."),
        "quota_ram": ("51200", "Default RAM in MiB per project (-1: unlimited)."),
        "quota_key_pairs": ("100", "Default key pairs per user (-1: unlimited)."),
        "quota_server_groups": ("10", "Default server groups per project (-1: unlimited)."),
        "quota_server_group_members": ("10", "Default servers per server group (-1: unlimited)."),
        "quota_metadata_items": ("128", "Metadata items per server (-1: unlimited)."),
        "console_token_ttl": ("600", "Seconds a console token (the URL of os-remote-consoles "
                              "and os-getVNCConsole) stays valid; it works once."),
        "novncproxy_base_url": (
            "http://127.0.0.1:6080/vnc_lite.html",
            "The noVNC page of stratus-novncproxy as users reach it; console URLs are it plus "
            "the token.",
        ),
        "recovery_interval": (
            "10",
            "Seconds between two passes over the API's unfinished work (builds and deletes "
            "no live request owns, ports left for servers; docs/crash-recovery.md); it also "
            "runs at start.",
        ),
        "recovery_stale_after": (
            "600",
            "Seconds after which a step owned by a compute API process on another host "
            "(whose liveness cannot be checked) counts as abandoned.",
        ),
    },
    "agent": {
        "host": ("", "This host's name as the APIs know it (binding:host_id); empty: hostname."),
        "l2_backend": ("ovs", "Layer-2 backend of the network agent: ovs | linuxbridge."),
        "tunnel_type": ("vxlan", "Tunnels between hosts for the ovs backend: vxlan | gre."),
        "datapath_type": (
            "auto",
            "OVS datapath: system (kernel module) | netdev (userspace) | auto (detect).",
        ),
        "underlay_interface": (
            "",
            "Interface carrying tunnel traffic (ovs netdev: moved into br-phy); empty: by route.",
        ),
        "underlay_ip": ("", "This host's tunnel endpoint IP (the other hosts' tunnel peer)."),
        "network_node": (
            "false",
            "Whether this host serves DHCP, routers and metadata (registered with the API).",
        ),
        "physical_interface_mappings": (
            "",
            "Provider networks: comma-separated physnet:interface (e.g. public:eth1).",
        ),
        "external_bridge": (
            "",
            "The deploy's external bridge (e.g. st-br-ex): made again, marked "
            "stratus:<deploy_prefix>, when missing (after a host boot); empty: none.",
        ),
        "external_bridge_cidr": (
            "",
            "Address of external_bridge (e.g. 172.24.4.1/24), added when missing; empty: none.",
        ),
        "state_dir": (
            "/var/lib/stratus-agent",
            "Agent state: dnsmasq files and leases, metadata proxy settings and pid files "
            "(every parent traversable by others: dnsmasq reads them unprivileged).",
        ),
        "network_state_url": (
            "http://127.0.0.1:9696/v2.0/stratus/host-state?host={host}",
            "Desired network state of this host: an http(s) URL or a JSON file path.",
        ),
        "username": (
            "",
            "Service user the agent authenticates as (admin role) to read its host's state.",
        ),
        "password": ("", "Password of that user."),
        "project_name": ("service", "Project the agent's token is scoped to."),
        "resync_interval": ("30", "Seconds between two full reconcile passes."),
        "retry_interval": ("5", "Seconds before retrying after a temporary error."),
        "long_poll_wait": (
            "30",
            "Between passes the agent long-polls the network API for a change of its host's "
            "state this many seconds at a time (at most 30) and converges as soon as one "
            "comes; 0: no long-poll (passes every resync/retry interval only).",
        ),
        "metadata_url": (
            "http://127.0.0.1:8775",
            "Where the metadata proxy forwards instance requests (stratus-metadata).",
        ),
        "metadata_shared_secret": (
            "",
            "HMAC-SHA256 key signing proxied metadata requests; the proxy refuses to start "
            "while it is empty.",
        ),
        "metadata_proxy_port": ("80", "Port the metadata proxy listens on at 169.254.169.254."),
        "host_netns": (
            "",
            "Run all host commands inside this network namespace (multi-host tests only).",
        ),
        "netns_prefix": (
            "",
            "Multi-host tests only: more prefix before the namespace names "
            "(<netns_prefix><deploy_prefix>-qdhcp-<id>), for fake hosts sharing /run/netns.",
        ),
        "nft_prefix": (
            "stratus_",
            "Start of the agent's nftables table names (<nft_prefix><deploy_prefix>_sg).",
        ),
        "ovs_rundir": (
            "",
            "OVS_RUNDIR of the Open vSwitch to drive (tests: one per fake host); empty: default.",
        ),
    },
    "metadata": {
        "bind_host": ("0.0.0.0", "Address stratus-metadata listens on (the proxies reach it)."),
        "bind_port": ("8775", "Port stratus-metadata listens on."),
        "workers": ("1", "Number of uvicorn worker processes (each keeps its own cache)."),
        "shared_secret": (
            "",
            "HMAC-SHA256 key the metadata proxies sign requests with (the same as [agent] "
            "metadata_shared_secret); stratus-metadata refuses to start while it is empty.",
        ),
        "compute_url": (
            "http://127.0.0.1:8774/v2.1",
            "The compute API whose metadata lookup finds an instance by network + fixed IP.",
        ),
        "username": ("stratus-metadata", "Service user stratus-metadata authenticates as."),
        "password": ("", "Password of that user."),
        "project_name": ("service", "Project the service user's token is scoped to."),
        "cache_ttl": (
            "5",
            "Seconds an instance document is cached per (network, fixed IP); 0: no cache.",
        ),
        "negative_cache_ttl": (
            "2",
            "Seconds a 'no instance has this address' answer is cached; 0: not cached.",
        ),
        "cache_max_entries": ("10000", "Most (network, fixed IP) entries kept in the cache."),
        "compute_timeout": ("10", "Seconds to wait for the compute API before answering 503."),
    },
    "compute_agent": {
        "host": ("", "This host's name as the compute API knows it (the network agent's "
                 "[agent] host); empty: hostname."),
        "compute_url": ("http://127.0.0.1:8774/v2.1", "Compute API (its agent endpoints)."),
        "image_url": ("http://127.0.0.1:9292", "Image API: image download, snapshot upload."),
        "network_url": ("http://127.0.0.1:9696", "Network API: port status (vif_plug_wait)."),
        "username": ("", "Service user of the compute agent (admin role)."),
        "password": ("", "Password of that user."),
        "project_name": ("service", "Project the agent's token is scoped to."),
        "instances_path": (
            "/var/lib/stratus/instances",
            "Instance directories (<id>/disk, disk.config, console.log), image cache in _base/.",
        ),
        "virt_type": (
            "auto",
            "kvm | qemu (TCG) | auto (kvm when /dev/kvm works and can boot a guest).",
        ),
        "libvirt_uri": ("qemu:///system", "libvirt connection URI (virsh -c)."),
        "domain_prefix": (
            "",
            "Domain names are <prefix><server id>; empty: <[DEFAULT] deploy_prefix>-instance-.",
        ),
        "availability_zone": ("nova", "Availability zone this host reports."),
        "resync_interval": ("10", "Seconds between full reconcile passes."),
        "heartbeat_interval": ("10", "Seconds between heartbeats (resources) to the compute API."),
        "retry_interval": ("5", "Seconds before the next pass after an error."),
        "vcpus": ("0", "vCPUs reported (0: the host's CPU count)."),
        "memory_mb": ("0", "RAM reported in MiB (0: the host's memory)."),
        "disk_gb": ("0", "Disk reported in GiB (0: size of instances_path's filesystem)."),
        "host_ip": ("", "Address reported as host_ip (empty: route to compute_url)."),
        "resume_guests_state_on_host_boot": (
            "true",
            "After a host boot, start the servers that were running before it (their "
            "domains are shut off); servers a user stopped stay stopped.",
        ),
        "vif_plug_wait": (
            "true",
            "Wait for the ports to be ACTIVE in the network API before starting a domain.",
        ),
        "vif_plug_timeout": ("60", "Seconds to wait for the ports before failing the spawn."),
        "shutdown_timeout": (
            "60",
            "Seconds a clean (ACPI) shutdown or soft reboot may take before it is forced.",
        ),
        "image_cache_max_age": (
            "86400",
            "Seconds an unused image in _base/ is kept before it is removed.",
        ),
        "console_interval": ("2", "Least seconds between two console reports of a server."),
        "vnc_enabled": ("true", "Give each guest a VNC display (the consoles of the "
                        "novncproxy, docs/consoles.md)."),
        "vnc_listen": ("", "Address the guests' VNC displays listen on; empty: host_ip (the "
                       "management address), never a wildcard unless set here."),
        "workers": ("4", "Servers converged in parallel (spawns, power actions)."),
        "command_timeout": ("600", "Seconds a host command (virsh, qemu-img) may take."),
    },
    "volume": {
        "bind_host": ("0.0.0.0", "Address the volume API listens on."),
        "bind_port": ("8776", "Port the volume API listens on."),
        "public_url": (
            "",
            "Base URL used in links and version documents; empty: taken from each request.",
        ),
        "database_url": (
            "sqlite:////var/lib/stratus/volume.sqlite",
            "SQLAlchemy URL of the volume database (sqlite:/// or postgresql+psycopg://).",
        ),
        "workers": ("1", "Number of uvicorn worker processes."),
        "image_url": ("http://127.0.0.1:9292", "Image API (Glance v2): create from image, "
                      "upload to image (called with the caller's token)."),
        "compute_url": ("", "Compute API (Nova v2.1) that gets the volume-extended event after "
                        "an extend of an attached volume; empty: no events are sent."),
        "username": ("", "Service user of the volume API (admin role): sends the compute "
                     "API's external events."),
        "password": ("", "Password of that user."),
        "project_name": ("service", "Project that user's token is scoped to."),
        "default_availability_zone": ("nova", "Availability zone of volumes and storage hosts."),
        "default_volume_type": ("__DEFAULT__", "Volume type of volumes created without one "
                                "(made at start when missing)."),
        "backend_name": ("stratus", "volume_backend_name of the storage hosts (a type whose "
                         "volume_backend_name is a host's name places volumes on that host)."),
        "volume_format": ("raw", "raw | qcow2: the format of new volume files (when the "
                          "storage host offers it; else the host's first format)."),
        "service_down_time": ("60", "Seconds after the last heartbeat when a storage host "
                              "counts as down (no new volumes are placed on it)."),
        "export_timeout": ("30", "Seconds an attachment update (or os-initialize_connection) "
                           "waits for the storage agent to report the export ready (409 after)."),
        "sweep_interval": ("10", "Seconds between two re-derivations of statuses from the "
                           "agents' last reports (also done at start)."),
        "stale_attachment_seconds": ("3600", "An attachment reserved or attaching (never "
                                     "completed) for longer is removed; 0: never."),
        "quota_volumes": ("10", "Default volumes per project (-1: unlimited)."),
        "quota_gigabytes": ("1000", "Default GiB of volumes and snapshots per project "
                            "(-1: unlimited)."),
        "quota_snapshots": ("10", "Default snapshots per project (-1: unlimited)."),
    },
    "storage_agent": {
        "host": ("", "This storage host's name as the volume API knows it; empty: hostname."),
        "volume_url": ("http://127.0.0.1:8776", "Volume API (its /v3/storage endpoints)."),
        "image_url": ("http://127.0.0.1:9292", "Image API: create from image, upload to image."),
        "username": ("", "Service user of the storage agent (admin role)."),
        "password": ("", "Password of that user."),
        "project_name": ("service", "Project the agent's token is scoped to."),
        "pool_path": ("/var/lib/stratus/volumes",
                      "Directory of the volume files <deploy_prefix>-volume-<id>.<format>."),
        "volume_format": ("raw", "raw | qcow2: the format this host registers (an exported "
                          "qcow2 volume is served to tgt through a qemu-storage-daemon raw "
                          "view over FUSE)."),
        "iqn_base": ("iqn.2010-10.org.stratus", "Target names are <iqn_base>:<deploy_prefix>-"
                     "<host>:<attachment id>; only targets under that prefix are touched."),
        "portal_ip": ("", "Address tgtd listens on (empty: the route to volume_url)."),
        "portal_port": ("3260", "Port tgtd listens on (the portal registered)."),
        "tgt_control_port": ("0", "tgtd's control port (tgtadm -C); 0: tgtd's default."),
        "report_interval": ("10", "Seconds between registrations (heartbeats)."),
        "resync_interval": ("30", "Most seconds between two full passes and reports."),
        "retry_interval": ("5", "Seconds before retrying after an API error."),
        "poll_wait": ("30", "Seconds a long-poll of the host state may wait."),
        "workers": ("2", "Volume files made in parallel (creates, snapshots, uploads)."),
        "command_timeout": ("3600", "Seconds a qemu-img command may take."),
    },
    "novncproxy": {
        "bind_host": ("127.0.0.1", "Address stratus-novncproxy listens on (browsers reach it)."),
        "bind_port": ("6080", "Port stratus-novncproxy listens on."),
        "web": ("/usr/share/novnc", "The noVNC client's files (Debian's novnc package)."),
        "compute_url": ("http://127.0.0.1:8774/v2.1", "Compute API the tokens are checked with."),
        "username": ("", "Service user that spends console tokens (admin role)."),
        "password": ("", "Password of that user."),
        "project_name": ("service", "Project the proxy's token is scoped to."),
        "api_timeout": ("10", "Seconds to wait for the compute API's answer on a token."),
    },
    "dashboard": {
        "bind_host": ("127.0.0.1", "Address stratus-dashboard listens on."),
        "bind_port": ("8000", "Port stratus-dashboard listens on."),
        "workers": ("1", "uvicorn workers; must be 1 (the sessions live in the process)."),
        "identity_url": (
            "http://127.0.0.1:5000/v3",
            "Identity API the dashboard signs users in with (the other APIs come from the "
            "token's catalog).",
        ),
        "interface": ("public", "Catalog interface of the endpoints the dashboard calls."),
        "session_timeout": (
            "3600",
            "Seconds a session lives without a request (it ends with its token anyway).",
        ),
        "secure_cookies": (
            "false",
            "Mark the session cookie Secure (set it behind TLS; a https request sets it too).",
        ),
        "api_timeout": ("30", "Seconds to wait for an API before showing its failure."),
    },
    "object": {
        "bind_host": ("0.0.0.0", "Address the object storage API (Swift v1 proxy) listens on."),
        "bind_port": ("8080", "Port the object storage API listens on."),
        "public_url": (
            "",
            "Base URL used in /info and links; empty: taken from each request.",
        ),
        "database_url": (
            "sqlite:////var/lib/stratus/object.sqlite",
            "SQLAlchemy URL of the object listing database (accounts, containers, rows).",
        ),
        "workers": ("1", "Number of uvicorn worker processes."),
        "identity_url": ("http://127.0.0.1:5000/v3", "Identity API that validates tokens."),
        "ring_file": ("/etc/stratus/object-ring.json", "The object ring (stratus-manage "
                      "ring build writes it; re-read when it changes)."),
        "max_file_size": ("5368709122", "Largest single object in bytes (larger: 413)."),
        "container_listing_limit": ("10000", "Most entries one listing returns."),
        "replicator_interval": ("30", "Seconds between two replication passes."),
        "auditor_interval": ("300", "Seconds between two auditor passes over every object."),
        "expirer_interval": ("30", "Seconds between two passes of the expirer."),
        "spool_dir": ("/var/lib/stratus/object-spool", "Where the proxy keeps its pending "
                      "listing updates when it has no local ring device (bodies are "
                      "streamed to the object servers, never spooled: "
                      "docs/object-storage.md)."),
        "consistency_jobs": ("replicator,auditor,expirer,updater", "What "
                             "stratus-object-replicator runs here; a storage host without "
                             "the listing database: replicator,auditor."),
    },
    "object_server": {
        "bind_host": ("127.0.0.1", "Address stratus-object-server listens on (the "
                      "management address; the ring names its devices host:port)."),
        "bind_port": ("6200", "Port stratus-object-server listens on."),
        "workers": ("1", "Number of uvicorn worker processes."),
        "secret": ("", "Shared secret the proxy and the replicators send to the object "
                   "servers (X-Object-Secret); the same on every host; the object server "
                   "refuses to start while it is empty."),
        "timeout": ("10", "Seconds a proxy or replicator waits for an object server "
                    "before it counts as down."),
    },
    "debug": {
        "crash_at": (
            "",
            "Test only: the name of a crash point (docs/crash-recovery.md) where the API "
            "kills itself with SIGKILL, to test recovery; empty (the default): never.",
        ),
    },
}


class ConfigError(Exception):
    """A setting is missing or has a value that cannot be used."""


def known_keys(section: str) -> set[str]:
    """The keys a section may set: its own and the [DEFAULT] ones; [DEFAULT] takes any."""
    if section == "DEFAULT":
        return {key for keys in DEFAULTS.values() for key in keys}
    return set(DEFAULTS.get(section, {})) | set(DEFAULTS["DEFAULT"])


def _env_name(section: str, key: str) -> str:
    return f"STRATUS_{section.upper()}__{key.upper()}"


def _check_name(path: str, section: str, key: str | None, env: str | None = None) -> None:
    """Raise ConfigError naming the file, the name and the nearest valid name unless
    ``[section] key`` is known; ``env`` is the variable's name for an override."""
    where = f"{path}: " if env is None else f"{path}: environment variable {env}: "
    if section not in DEFAULTS:
        near = difflib.get_close_matches(section, list(DEFAULTS), n=1)
        if near:
            name = _env_name(near[0], key) if env and key else f"[{near[0]}]"
            hint = f"nearest valid section: {name}"
        else:
            hint = "valid sections: " + ", ".join(f"[{name}]" for name in DEFAULTS)
        raise ConfigError(f"{where}unknown section [{section}]{f' (key {key})' if key else ''}; "
                          f"{hint}")
    valid = known_keys(section)
    if key is not None and key not in valid:
        near = difflib.get_close_matches(key, sorted(valid), n=1)
        if near:
            hint = f"nearest valid key: {_env_name(section, near[0]) if env else near[0]}"
        else:
            hint = f"valid keys: {', '.join(sorted(valid))}"
        raise ConfigError(f"{where}unknown key [{section}] {key}; {hint}")


@dataclass
class Config:
    """Parsed configuration with environment overrides applied."""

    path: str | None = None
    _parser: configparser.ConfigParser = field(default_factory=configparser.ConfigParser)

    @classmethod
    def load(cls, path: str | None = None) -> Config:
        """Read and check the file named by ``path``, ``STRATUS_CONFIG_FILE`` or the
        default path, and check the ``STRATUS_<SECTION>__<KEY>`` variables; raise
        :class:`ConfigError` (one line) on a missing file or an unknown name."""
        given = path or os.environ.get("STRATUS_CONFIG_FILE")
        path = given or DEFAULT_CONFIG_FILE
        if not Path(path).is_file():
            how = "" if given else " (neither --config-file nor STRATUS_CONFIG_FILE is set)"
            raise ConfigError(f"{path}: config file not found{how}")
        parser = configparser.ConfigParser(interpolation=None)
        # The same text again with no DEFAULT magic: the exact keys of each section.
        raw = configparser.ConfigParser(interpolation=None, default_section="\0")
        try:
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
            parser.read_string(text, source=path)
            raw.read_string(text, source=path)
        except (OSError, UnicodeDecodeError, configparser.Error) as exc:
            raise ConfigError(f"{path}: cannot be read: {' '.join(str(exc).split())}") from None
        for section in raw.sections():
            _check_name(path, section, None)
            for key in raw.options(section):
                _check_name(path, section, key)
        for name in sorted(os.environ):
            if name.startswith("STRATUS_") and "__" in name:
                section, _, key = name.removeprefix("STRATUS_").partition("__")
                section = "DEFAULT" if section == "DEFAULT" else section.lower()
                _check_name(path, section, key.lower(), env=name)
        return cls(path=path, _parser=parser)

    def get(self, section: str, key: str) -> str:
        env = os.environ.get(f"STRATUS_{section.upper()}__{key.upper()}")
        if env is not None:
            return env
        if section != "DEFAULT" and self._parser.has_option(section, key):
            return self._parser.get(section, key)
        # A section's key not set for the section falls back to [DEFAULT]: its
        # environment variable first, as for every other section, then the file.
        env = os.environ.get(_env_name("DEFAULT", key)) if section != "DEFAULT" else None
        if env is not None:
            return env
        if self._parser.has_option("DEFAULT", key):
            return self._parser.get("DEFAULT", key)
        for sect in (section, "DEFAULT"):
            if key in DEFAULTS.get(sect, {}):
                return DEFAULTS[sect][key][0]
        raise ConfigError(f"setting [{section}] {key} is not set and has no default")

    def get_int(self, section: str, key: str, minimum: int | None = None) -> int:
        raw = self.get(section, key)
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"setting [{section}] {key}={raw!r} is not an integer") from None
        if minimum is not None and value < minimum:
            raise ConfigError(f"setting [{section}] {key}={value} must be at least {minimum}")
        return value

    def get_bool(self, section: str, key: str) -> bool:
        raw = self.get(section, key).strip().lower()
        if raw in ("1", "true", "yes", "on"):
            return True
        if raw in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"setting [{section}] {key}={raw!r} is not a boolean (true/false)")
