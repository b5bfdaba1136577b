"""Issue 18 end to end, on the boot module's session cloud (tests/e2e/conftest.py ``cloud``).

- playbooks/provision.yml with an inventory declaring two projects, a user, a flavor, an
  image, a key pair, a security group, two networks (one per project) with a router, and three
  tiny servers (the tiny flavor and image), one of them with a floating IP and user data: it
  converges, and a second run is changed=0;
- the stratus.cloud.servers inventory plugin lists that server (ansible-inventory --graph
  shows the default and keyed groups, a second listing comes from the jsonfile cache) and a
  follow-up play over that inventory reaches the guest over SSH on its floating IP and gathers
  its facts. The tiny busybox guest has no Python, so ``setup`` cannot run there: the play
  gathers them with ``ansible.builtin.raw`` (uname, /proc/meminfo, /proc/cpuinfo, its
  addresses) and ``set_fact`` with ``cacheable: true`` (facts of the host, as setup's are);
- the same read-only module through every way of giving credentials: OS_CLOUD naming a
  cloud of ~/.config/openstack/clouds.yaml, the OS_* variables of the deploy's openrc, an
  auth dict, a cloud dict with an application credential, and module_defaults on the
  action group;
- an inventory naming an undeclared network fails before anything changes, naming the entry;
- with the server and the second network removed from the inventory and stratus_prune: true,
  check mode shows the plan and deletes nothing; the real run deletes exactly those two; a
  network made by hand in the same project, and the external network, survive;
- everything made here (prefix zpv) is deleted at the end.

Three guests (TCG, the tiny image); marked e2e_boot_cloud so it runs before the bystander.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_boot_aio import BIN, EXT_CIDR, EXT_GATEWAY, EXT_NET, REPO, Cloud, recap, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.e2e_boot_cloud,
              pytest.mark.timeout(1800)]

SERVER = "zpv-s1"
SERVERS = (SERVER, "zpv-s2", "zpv-s3")
USERDATA = "#!/bin/sh\necho zpv-userdata > /root/zpv-userdata\nexit 0\n"


def declared(cloud: Cloud) -> dict[str, Any]:
    """The inventory variables of the full declaration."""
    return {
        "provision_clouds_yaml": str(cloud.clouds_yaml),
        "provision_owner": "zpv",
        "stratus_projects": [{"name": "zpv-alpha", "description": "e2e"}, {"name": "zpv-beta"}],
        "stratus_users": [{"name": "zpv-user", "password": "zpv-pw-1",
                           "default_project": "zpv-beta",
                           "roles": [{"project": "zpv-beta", "role": "member"}]}],
        "stratus_flavors": [{"name": "zpv-flavor", "ram": 256, "vcpus": 1, "disk": 1}],
        "stratus_images": [{"name": "zpv-tiny", "project": "zpv-alpha",
                            "filename": str(REPO / "tests" / "images" / "cache" / "tiny.qcow2"),
                            "disk_format": "qcow2", "container_format": "bare"}],
        "stratus_keypairs": [{"name": "zpv-key", "public_key_file": f"{cloud.key}.pub"}],
        "stratus_security_groups": [{
            "name": "zpv-ssh", "project": "zpv-alpha",
            "rules": [{"direction": "egress", "ethertype": "IPv4"},
                      {"protocol": "tcp", "port_range_min": 22, "port_range_max": 22,
                       "remote_ip_prefix": "0.0.0.0/0"},
                      {"protocol": "icmp", "remote_ip_prefix": "0.0.0.0/0"}]}],
        "stratus_networks": [
            {"name": "zpv-net1", "project": "zpv-alpha",
             "subnets": [{"name": "zpv-sub1", "cidr": "10.231.1.0/24"}]},
            {"name": "zpv-net2", "project": "zpv-beta",
             "subnets": [{"name": "zpv-sub2", "cidr": "10.231.2.0/24"}]},
        ],
        "stratus_routers": [{"name": "zpv-router", "project": "zpv-alpha", "network": "public",
                             "interfaces": ["zpv-sub1"]}],
        "stratus_servers": [{
            "name": SERVER, "project": "zpv-alpha", "image": "zpv-tiny", "flavor": "m1.tiny",
            "networks": ["zpv-net1"], "key_name": "zpv-key",
            "security_groups": ["default", "zpv-ssh"], "userdata": USERDATA,
            "metadata": {"role": "web"}, "floating_ip_pool": "public"}] + [{
            "name": name, "project": "zpv-alpha", "image": "zpv-tiny", "flavor": "m1.tiny",
            "networks": ["zpv-net1"], "key_name": "zpv-key", "security_groups": ["default"],
            "metadata": {"role": "worker"}} for name in SERVERS[1:]],
    }


# Facts of a host with no Python (the busybox guest): ansible.builtin.setup needs Python on
# the host, so they are read with raw commands and kept with set_fact cacheable (host facts,
# in the fact cache when one is configured), under the names setup gives them.
_RAW_FACTS = (
    "uname -n; uname -s; uname -r; uname -m; "
    "awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo; "
    "grep -c '^processor' /proc/cpuinfo; "
    "ip -o -4 addr show scope global | awk '{split($4, a, \"/\"); print a[1]}' | tr '\\n' ' '"
)
FACTS_PLAY = [{
    "name": "Gather the facts of the web servers (no Python on them: raw)",
    "hosts": "meta-role_web", "gather_facts": False,
    "tasks": [
        {"name": "Read the facts with raw commands", "ansible.builtin.raw": _RAW_FACTS,
         "register": "raw_facts", "changed_when": False},
        {"name": "Keep them as facts of the host", "ansible.builtin.set_fact": {
            "cacheable": True,
            "ansible_hostname": "{{ raw_facts.stdout_lines[0] | trim }}",
            "ansible_system": "{{ raw_facts.stdout_lines[1] | trim }}",
            "ansible_kernel": "{{ raw_facts.stdout_lines[2] | trim }}",
            "ansible_architecture": "{{ raw_facts.stdout_lines[3] | trim }}",
            "ansible_memtotal_mb": "{{ raw_facts.stdout_lines[4] | trim | int }}",
            "ansible_processor_count": "{{ raw_facts.stdout_lines[5] | trim | int }}",
            "ansible_all_ipv4_addresses": "{{ raw_facts.stdout_lines[6] | split }}"}},
        {"name": "Write them out on the controller", "delegate_to": "localhost",
         "ansible.builtin.copy": {"dest": "{{ facts_file }}", "mode": "0644", "content": "{{ {"
            "'hostname': ansible_facts.hostname, 'system': ansible_facts.system, "
            "'kernel': ansible_facts.kernel, 'architecture': ansible_facts.architecture, "
            "'memtotal_mb': ansible_facts.memtotal_mb, "
            "'processor_count': ansible_facts.processor_count, "
            "'all_ipv4_addresses': ansible_facts.all_ipv4_addresses} | to_json }}"}},
    ]}]


class Runner:
    """ansible-playbook / ansible-inventory with this module's inventories, in its work dir."""

    def __init__(self, cloud: Cloud, work: Path) -> None:
        self.cloud = cloud
        self.work = work

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "OS_"))}
        env.update(ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
                   ANSIBLE_FORCE_COLOR="0", ANSIBLE_COLLECTIONS_PATH=str(REPO / ".ansible" /
                                                                         "collections"),
                   PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", **extra)
        return env

    def inventory(self, name: str, variables: dict[str, Any]) -> Path:
        path = self.work / f"{name}.yml"
        path.write_text(yaml.safe_dump({"all": {"hosts": {"localhost": {
            "ansible_connection": "local", "ansible_python_interpreter": str(BIN / "python")}},
            "vars": variables}}))
        return path

    def run(self, tool: str, *args: str, log: str, check: bool = True,
            **env: str) -> subprocess.CompletedProcess[str]:
        started = time.monotonic()
        done = subprocess.run([str(BIN / tool), *args], cwd=self.work, env=self.env(**env),
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=900, check=False)
        (self.work / f"{log}.log").write_text(done.stdout + done.stderr)
        print(f"{tool} {log}: exit {done.returncode} in {time.monotonic() - started:.1f}s")
        if check:
            assert done.returncode == 0, f"{tool} {log}:\n{done.stdout[-8000:]}{done.stderr}"
        return done

    def provision(self, inventory: Path, log: str, *args: str,
                  check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run("ansible-playbook", "-i", str(inventory),
                        str(REPO / "playbooks" / "provision.yml"), *args, log=log, check=check)


def plain(value: Any) -> Any:
    """ansible-inventory --list's JSON without its {"__ansible_unsafe": ...} wrappers (what an
    inventory plugin reads from an API is untrusted, as openstack.cloud's is)."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return value["__ansible_unsafe"]
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def names(cloud: Cloud, service: str, path: str, key: str) -> set[str]:
    resp = cloud.api("GET", service, path)
    assert resp.status_code == 200, resp.text
    return {item.get("name") for item in resp.json()[key]}


@pytest.fixture(scope="module")
def runner(cloud: Cloud) -> Iterator[Runner]:
    work = cloud.work / "zpv-provision"
    work.mkdir(exist_ok=True)
    r = Runner(cloud, work)
    # The external network, as the boot module makes it (by hand: no ownership marker).
    cloud.play([{"stratus.cloud.cloud_network": {
        "clouds_yaml": str(cloud.clouds_yaml), "name": "public", "external": True,
        "provider_network_type": "flat", "provider_physical_network": "public",
        "subnets": [{"name": "public-subnet", "cidr": EXT_CIDR, "gateway_ip": EXT_GATEWAY,
                     "enable_dhcp": False, "allocation_pools": [
                         {"start": f"{EXT_NET}.100", "end": f"{EXT_NET}.200"}]}]}}],
        "zpv-public")
    try:
        yield r
    finally:
        cleanup(r)


def cleanup(r: Runner) -> None:
    """Everything of zpv: the declaration emptied and pruned, then projects, user, key."""
    cloud = r.cloud
    empty = r.inventory("zpv-empty", {"provision_clouds_yaml": str(cloud.clouds_yaml),
                                      "provision_owner": "zpv", "stratus_prune": True})
    r.provision(empty, "zpv-cleanup", check=False)
    auth = {"clouds_yaml": str(cloud.clouds_yaml)}
    cloud.play([
        {"stratus.cloud.cloud_network": {**auth, "auth": {"project_name": "zpv-alpha"},
                                         "name": "zpv-byhand", "state": "absent"},
         "ignore_errors": True},
        {"stratus.cloud.cloud_keypair": {**auth, "name": "zpv-key", "state": "absent"}},
        {"stratus.cloud.cloud_user": {**auth, "name": "zpv-user", "state": "absent"}},
        {"stratus.cloud.cloud_project": {**auth, "name": "zpv-alpha", "state": "absent"}},
        {"stratus.cloud.cloud_project": {**auth, "name": "zpv-beta", "state": "absent"}},
    ], "zpv-cleanup-identity")


def test_provision_inventory_auth_and_prune(cloud: Cloud, runner: Runner) -> None:
    r = runner
    variables = declared(cloud)
    full = r.inventory("zpv-full", variables)

    # a missing dependency fails before anything changes, naming the entry
    broken = r.inventory("zpv-broken", {**variables, "stratus_servers": [
        {**variables["stratus_servers"][0], "networks": ["zpv-nowhere"]}]})
    failed = r.provision(broken, "zpv-broken", check=False)
    assert failed.returncode != 0
    assert "stratus_servers: 'zpv-s1' names network 'zpv-nowhere'" in failed.stdout
    assert "zpv-alpha" not in names(cloud, "identity", "/v3/projects", "projects")

    # converge, then a second run changes nothing
    first = r.provision(full, "zpv-provision-1")
    assert recap(first.stdout)["changed"] > 0
    second = r.provision(full, "zpv-provision-2")
    assert recap(second.stdout)["changed"] == 0, second.stdout[-6000:]
    servers = {s["name"]: s for s in cloud.api("GET", "compute", "/servers/detail",
                                               params={"all_tenants": "1"}).json()["servers"]}
    assert set(SERVERS) <= set(servers), sorted(servers)
    for name in SERVERS[1:]:
        assert servers[name]["metadata"] == {"role": "worker", "stratus_provision": "zpv"}
        assert not [a for addrs in servers[name]["addresses"].values() for a in addrs
                    if a.get("OS-EXT-IPS:type") == "floating"], servers[name]["addresses"]
    server = servers[SERVER]
    assert server["metadata"] == {"role": "web", "stratus_provision": "zpv"}
    floating = [a["addr"] for addrs in server["addresses"].values() for a in addrs
                if a.get("OS-EXT-IPS:type") == "floating"]
    assert len(floating) == 1, server["addresses"]

    # the inventory plugin: groups, keyed groups, cache; SSH to the guest on its floating IP
    cache = r.work / "inventory-cache"
    plugin = r.work / "zpv.stratus.yml"
    plugin.write_text(yaml.safe_dump({
        "plugin": "stratus.cloud.servers", "clouds_yaml_path": [str(cloud.clouds_yaml)],
        "all_projects": True, "cache": True, "cache_plugin": "ansible.builtin.jsonfile",
        "cache_connection": str(cache),
        "keyed_groups": [{"key": "stratus.metadata.role", "prefix": "role"}],
        "compose": {"ansible_user": "'root'",
                    "ansible_ssh_private_key_file": repr(str(cloud.key)),
                    "ansible_ssh_common_args": "'-o StrictHostKeyChecking=no "
                                               "-o UserKnownHostsFile=/dev/null'"}}))
    graph = r.run("ansible-inventory", "-i", str(plugin), "--graph", log="zpv-graph").stdout
    for group in ("@stratus:", "@project-zpv-alpha:", "@flavor-m1_tiny:", "@image-zpv-tiny:",
                  "@status-active:", "@meta-role_web:", "@role_web:", "@role_worker:"):
        assert group in graph, graph
    for name in SERVERS:
        assert f"--{name}" in graph, graph
    listing = json.loads(r.run("ansible-inventory", "-i", str(plugin), "--list",
                               log="zpv-list").stdout)
    hostvars = plain(listing["_meta"]["hostvars"][SERVER])
    assert hostvars["ansible_host"] == floating[0]
    assert hostvars["stratus"]["project"] == "zpv-alpha"
    assert any(cache.iterdir()), "the inventory cache was not written"
    cloud.wait_ssh(floating[0])
    wait_for("the user data's file", lambda: cloud.ssh(
        floating[0], "cat /root/zpv-userdata", check=False).stdout.strip() == "zpv-userdata",
        120, 3)
    play = r.work / "zpv-reach.yml"
    play.write_text(yaml.safe_dump(FACTS_PLAY))
    facts_file = r.work / "zpv-facts.json"
    r.run("ansible-playbook", "-i", str(plugin), str(play), "-e",
          json.dumps({"facts_file": str(facts_file),
                      "ansible_python_interpreter": str(BIN / "python")}), log="zpv-reach")
    facts = json.loads(facts_file.read_text())
    assert facts["hostname"] == SERVER, facts
    assert facts["system"] == "Linux" and facts["architecture"] == "x86_64", facts
    assert facts["kernel"] and int(facts["memtotal_mb"]) > 0, facts
    assert int(facts["processor_count"]) >= 1, facts
    assert any(addr.startswith("10.231.1.") for addr in facts["all_ipv4_addresses"]), facts

    check_auth_ways(r)

    # prune: a network made by hand in the same project survives
    cloud.play([{"stratus.cloud.cloud_network": {
        "clouds_yaml": str(cloud.clouds_yaml), "auth": {"project_name": "zpv-alpha"},
        "name": "zpv-byhand"}}], "zpv-byhand")
    pruned_vars = {**variables, "stratus_prune": True, "stratus_servers": [],
                   "stratus_networks": variables["stratus_networks"][:1]}
    pruned = r.inventory("zpv-pruned", pruned_vars)
    before = names(cloud, "network", "/v2.0/networks", "networks")
    planned = r.provision(pruned, "zpv-prune-check", "--check")
    assert recap(planned.stdout)["changed"] >= 2, planned.stdout[-6000:]
    assert names(cloud, "network", "/v2.0/networks", "networks") == before
    assert SERVER in names(cloud, "compute", "/servers?all_tenants=1", "servers")
    r.provision(pruned, "zpv-prune")
    after = names(cloud, "network", "/v2.0/networks", "networks")
    assert before - after == {"zpv-net2"}, (before, after)
    assert {"zpv-net1", "zpv-byhand", "public"} <= after
    wait_for("the servers deleted", lambda: not set(SERVERS) & names(
        cloud, "compute", "/servers?all_tenants=1", "servers"), 180, 2)
    again = r.provision(pruned, "zpv-prune-2")
    assert recap(again.stdout)["changed"] == 0, again.stdout[-6000:]


def check_auth_ways(r: Runner) -> None:
    """One read-only module task per way of giving credentials; each must authenticate."""
    cloud = r.cloud
    entry = yaml.safe_load(cloud.clouds_yaml.read_text())["clouds"]["stratus"]
    auth = entry["auth"]
    home = r.work / "home"
    (home / ".config" / "openstack").mkdir(parents=True, exist_ok=True)
    (home / ".config" / "openstack" / "clouds.yaml").write_text(
        yaml.safe_dump({"clouds": {"zpvcloud": entry}}))
    openrc = {}
    for line in (cloud.config_dir / "openrc").read_text().splitlines():
        if line.startswith("export "):
            key, _, value = line[len("export "):].partition("=")
            openrc[key] = shlex.split(value)[0] if value else ""
    token, _endpoints = cloud.token()
    me = cloud.api("GET", "identity", "/v3/auth/tokens",
                   headers={"X-Subject-Token": token}).json()["token"]["user"]["id"]
    created = cloud.api("POST", "identity", f"/v3/users/{me}/application_credentials",
                        json={"application_credential": {"name": "zpv-appcred"}})
    assert created.status_code == 201, created.text
    cred = created.json()["application_credential"]
    read = {"name": "zpv-alpha"}
    module = "stratus.cloud.cloud_project"
    tasks = [
        {"name": "OS_CLOUD and ~/.config/openstack/clouds.yaml", module: read,
         "environment": {"OS_CLOUD": "zpvcloud", "HOME": str(home)}},
        {"name": "The OS_* variables of the openrc", module: read, "environment": openrc},
        {"name": "An auth dict", module: {**read, "auth": {
            k: auth[k] for k in ("auth_url", "username", "password", "project_name",
                                 "user_domain_id", "project_domain_id")}}},
        {"name": "An application credential", module: {**read, "cloud": {
            "auth_type": "v3applicationcredential", "auth": {
                "auth_url": auth["auth_url"], "application_credential_id": cred["id"],
                "application_credential_secret": cred["secret"]}}}},
        {"name": "module_defaults on the action group", "module_defaults": {
            "group/stratus.cloud.stratus": {"cloud": "stratus",
                                            "clouds_yaml": str(cloud.clouds_yaml)}},
         module: read},
    ]
    for task in tasks:
        task["register"] = "out"
        task["failed_when"] = "out.failed or out.changed or out.project.name != 'zpv-alpha'"
    play = r.work / "zpv-auth.yml"
    play.write_text(yaml.safe_dump([{"name": "Credentials each way", "hosts": "localhost",
                                     "gather_facts": False, "tasks": tasks}]))
    inventory = r.inventory("zpv-auth-inventory", {})
    try:
        out = r.run("ansible-playbook", "-i", str(inventory), str(play), log="zpv-auth").stdout
        assert recap(out)["ok"] == len(tasks) and recap(out)["failed"] == 0, out[-6000:]
    finally:
        cloud.api("DELETE", "identity", f"/v3/users/{me}/application_credentials/{cred['id']}")
