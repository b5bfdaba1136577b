"""Trust on the deployed cloud (issue 13): a policy override taking effect, the host scan,
and no secret in the deploy's Ansible output.

On the session cloud (tests/e2e/conftest.py ``cloud``, from test_boot_aio.deploy_cloud);
marked ``e2e_boot_cloud`` so that it runs before the bystander's guest is booted. Cheap: no
playbook run, one restart of stratus-network to take a policy file and one to drop it. The
timeout is the boot module's: when this module runs first, the session deploy counts
against its first test.

- Policy: ``policy_file`` for the network service (added to its section of the deployed
  stratus.conf, the file restored byte for byte afterwards) naming a ``policy.yaml`` with
  ``create_network: role:admin``; after ``supervisorctl restart stratus-network`` a member's
  network create gets 403; with the file gone and the service restarted again, 201.
- The host scan compares what runs, listens and lies on disk with the expectation of
  docs/security.md ("What the host scan expects"): sockets of the deploy's processes (the
  supervisord of the deploy and its descendants; ``ss -ltunpH``) never on a wildcard
  address; the programs run as ``stratus`` but for the ones listed as root; secret files
  are neither world-readable nor group-readable by another group than ``stratus``; nothing
  under the config and state directories is world-writable, and the databases are not
  reachable by other users.
- The deploy's output (the fixture's ``site-1.log`` in its work directory) holds none of
  the secrets the deploy was given or wrote: the admin, service and database passwords, the
  metadata shared secret, every password/secret value of stratus.conf, the Fernet keys, any
  Fernet token (``gAAAA...``) or PEM private key.
"""

from __future__ import annotations

import configparser
import grp
import os
import pwd
import re
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from test_boot_aio import Cloud, run, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.e2e_boot_cloud,
              pytest.mark.timeout(1800)]

# docs/security.md "What the host scan expects": the programs that keep root (host tools).
ROOT_PROGRAMS = {"stratus-network-agent", "stratus-compute-agent", "stratus-storage-agent",
                 "stratus-tgtd"}
# Sockets allowed on a wildcard address, with the reason (none today: the APIs bind the
# management address; dnsmasq and the metadata proxies listen inside the network namespaces).
WILDCARD_ALLOWED: dict[str, str] = {}
WILDCARDS = {"0.0.0.0", "*", "[::]", "::"}
# Secret files (relative to the config directory; glob patterns) and the groups that may read
# them (mode at most 0640 then; else 0600).
SECRETS: dict[str, set[str]] = {
    "stratus.conf": {"stratus"},
    "stratus.conf.d/*": set(),
    "fernet-keys/*": set(),
    "clouds.yaml": set(),
    "openrc": set(),
    "tls-ca/*.key": set(),
    "tls-ca/issued/*.key": set(),
    "tls/*.key": {"stratus"},
    "policy.yaml": {"stratus"},
}
FERNET_TOKEN = re.compile(r"gAAAAA[A-Za-z0-9_=-]{40,}")
SECRET_KEY = re.compile(r"(password|secret|_key$|^key$)")


# ---- policy override ------------------------------------------------------------------------

def wait_network_api(cloud: Cloud) -> None:
    wait_for("the network API to answer after its restart",
             lambda: _answers(cloud), 90, 1)


def _answers(cloud: Cloud) -> bool:
    try:
        return cloud.api("GET", "network", "/v2.0/networks").status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture
def member(cloud: Cloud) -> Iterator[dict[str, str]]:
    """A member of a new project: its token and the project's id; deleted afterwards."""
    name = f"ztr-{secrets.token_hex(3)}"
    password = "ztr-" + secrets.token_urlsafe(12)
    made: list[str] = []
    try:
        resp = cloud.api("POST", "identity", "/v3/projects", json={"project": {"name": name}})
        assert resp.status_code == 201, resp.text
        project = resp.json()["project"]["id"]
        made.append(f"/v3/projects/{project}")
        resp = cloud.api("POST", "identity", "/v3/users", json={"user": {
            "name": name, "password": password, "default_project_id": project}})
        assert resp.status_code == 201, resp.text
        user = resp.json()["user"]["id"]
        made.insert(0, f"/v3/users/{user}")
        roles = cloud.api("GET", "identity", "/v3/roles", params={"name": "member"}).json()
        role = roles["roles"][0]["id"]
        resp = cloud.api("PUT", "identity", f"/v3/projects/{project}/users/{user}/roles/{role}")
        assert resp.status_code == 204, resp.text
        _, endpoints = cloud.token()
        resp = httpx.post(f"{endpoints['identity']}/v3/auth/tokens", json={"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": name, "domain": {"id": "default"}, "password": password}}},
            "scope": {"project": {"id": project}}}}, timeout=30, verify=cloud.verify)
        assert resp.status_code == 201, resp.text
        yield {"token": resp.headers["X-Subject-Token"], "project": project,
               "network": endpoints["network"]}
    finally:
        for path in made:
            cloud.api("DELETE", "identity", path)


def create_network(cloud: Cloud, member: dict[str, str], name: str) -> httpx.Response:
    resp = httpx.post(f"{member['network']}/v2.0/networks", json={"network": {"name": name}},
                      headers={"X-Auth-Token": member["token"]}, timeout=60,
                      verify=cloud.verify)
    if resp.status_code == 201:
        cloud.api("DELETE", "network", f"/v2.0/networks/{resp.json()['network']['id']}")
    return resp


def test_a_policy_override_takes_effect_after_a_restart_and_its_removal_restores_the_default(
    cloud: Cloud, member: dict[str, str],
) -> None:
    conf = cloud.config_dir / "stratus.conf"
    original = conf.read_bytes()
    before = os.stat(conf)
    policy = cloud.config_dir / "ztr-policy.yaml"
    text = original.decode()
    assert text.count("\n[network]\n") == 1, "no [network] section in the deployed stratus.conf"
    assert create_network(cloud, member, "ztr-before").status_code == 201
    try:
        policy.write_text('create_network: "role:admin"\n')
        os.chown(policy, 0, pwd.getpwnam("stratus").pw_gid)
        policy.chmod(0o640)
        conf.write_text(text.replace("\n[network]\n", f"\n[network]\npolicy_file = {policy}\n"))
        assert cloud.supervisorctl("restart", "stratus-network").returncode == 0
        wait_network_api(cloud)
        refused = create_network(cloud, member, "ztr-refused")
        assert refused.status_code == 403, refused.text
        # The admin still may (the override names admin).
        assert cloud.api("GET", "network", "/v2.0/networks").status_code == 200
    finally:
        conf.write_bytes(original)
        os.chown(conf, before.st_uid, before.st_gid)
        conf.chmod(stat.S_IMODE(before.st_mode))
        policy.unlink(missing_ok=True)
        assert cloud.supervisorctl("restart", "stratus-network").returncode == 0
        wait_network_api(cloud)
    assert create_network(cloud, member, "ztr-after").status_code == 201


# ---- the host scan --------------------------------------------------------------------------

def programs(cloud: Cloud) -> dict[str, int]:
    """The supervisor programs of the deploy that run, with their pids."""
    out = cloud.supervisorctl("status").stdout
    found = {}
    for line in out.splitlines():
        match = re.match(r"(\S+)\s+RUNNING\s+pid (\d+),", line)
        if match:
            found[match.group(1).split(":")[-1]] = int(match.group(2))
    assert found, f"no running program in supervisorctl status:\n{out}"
    return found


def descendants(root: int) -> dict[int, int]:
    """Every process under ``root`` (``root`` included) -> the pid of its top ancestor below
    ``root`` (``root`` itself for root)."""
    parent: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parent[int(entry.name)] = int(fields[1])
    out = {root: root}
    changed = True
    while changed:
        changed = False
        for pid, ppid in parent.items():
            if pid not in out and ppid in out:
                out[pid] = pid if ppid == root else out[ppid]
                changed = True
    return out


def uid_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError(f"no Uid in /proc/{pid}/status")


def _root(pid: int) -> bool:
    try:
        return uid_of(pid) == 0
    except OSError:  # gone meanwhile
        return False


def test_the_host_scan_matches_the_documented_expectation(cloud: Cloud) -> None:
    supervisord = int(cloud.pidfile.read_text().strip())
    running = programs(cloud)
    by_pid = {pid: name for name, pid in running.items()}
    tree = descendants(supervisord)
    stratus_uid = pwd.getpwnam("stratus").pw_uid
    problems: list[str] = []

    # The processes with their users.
    assert uid_of(supervisord) == 0
    for name, pid in sorted(running.items()):
        want = 0 if name in ROOT_PROGRAMS else stratus_uid
        if uid_of(pid) != want:
            problems.append(f"{name} (pid {pid}) runs as uid {uid_of(pid)}, expected {want}")
    for pid, top in tree.items():
        owner = by_pid.get(top)
        if owner and owner not in ROOT_PROGRAMS and pid != top and _root(pid):
            problems.append(f"a child (pid {pid}) of {owner} runs as root")

    # The listening sockets of the deploy's processes and their addresses.
    sockets = []
    for line in run("ss", "-ltunpH").stdout.splitlines():
        pids = {int(p) for p in re.findall(r"pid=(\d+)", line)}
        ours = pids & tree.keys()
        if not ours:
            continue
        local = line.split()[4]
        address = local.rsplit(":", 1)[0].split("%", 1)[0]
        name = by_pid.get(tree[min(ours)], "supervisord")
        sockets.append(f"{name} {line.split()[0]} {local}")
        if address in WILDCARDS and name not in WILDCARD_ALLOWED:
            problems.append(f"{name} listens on {local} (a wildcard address): {line}")
    print("sockets of the deploy:\n  " + "\n  ".join(sorted(sockets)))
    assert sockets, "no listening socket found for the deploy's processes"

    # The files under the config and state directories, their modes and owners.
    config = cloud.config_dir
    for pattern, groups in SECRETS.items():
        for path in config.glob(pattern):
            if not path.is_file():
                continue
            info = path.stat()
            mode = stat.S_IMODE(info.st_mode)
            group = _group(info.st_gid)
            allowed = 0o640 if group in groups else 0o600
            if mode & ~allowed & 0o777:
                problems.append(f"secret {path} is {mode:04o} {_user(info.st_uid)}:{group}; "
                                f"at most {allowed:04o} (readable by group: {groups or 'none'})")
    state = [cloud.prefix / "var" / "lib" / "stratus", cloud.agent_state]
    for where in [config, *state]:
        for path in [where, *where.rglob("*")] if where.exists() else []:
            if path.is_symlink():
                continue
            info = path.lstat()
            mode = stat.S_IMODE(info.st_mode)
            if mode & 0o002 and not (stat.S_ISDIR(info.st_mode) and mode & stat.S_ISVTX):
                problems.append(f"{path} is world-writable ({mode:04o})")
            if ".sqlite" in path.name and path.is_file() and _others_reach(path):
                problems.append(f"database {path} is readable by every user ({mode:04o})")
    assert not problems, "host scan:\n" + "\n".join(problems)


def _group(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _others_reach(path: Path) -> bool:
    """Can a user that is neither owner nor in the group read ``path`` (o+r on it, o+x on
    every directory from / down to it)?"""
    if not stat.S_IMODE(path.stat().st_mode) & 0o004:
        return False
    return all(stat.S_IMODE(p.stat().st_mode) & 0o001 for p in path.parents)


# ---- secrets in the deploy's output -------------------------------------------------------

def deploy_secrets(cloud: Cloud) -> dict[str, str]:
    """What must never be printed: the secrets the deploy was given and the ones it wrote."""
    found = {key: str(value) for key, value in cloud.extra_vars.items()
             if SECRET_KEY.search(key) and isinstance(value, str) and len(value) >= 8}
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string((cloud.config_dir / "stratus.conf").read_text())
    for section in ["DEFAULT", *parser.sections()]:
        for key, value in parser.items(section, raw=True):
            if SECRET_KEY.search(key) and len(value) >= 8 and not value.startswith("/"):
                found[f"[{section}] {key}"] = value
    for path in (cloud.config_dir / "fernet-keys").glob("*"):
        found[f"fernet key {path.name}"] = path.read_text().strip()
    return found


def test_the_deploy_output_holds_no_secret(cloud: Cloud) -> None:
    logs = sorted(cloud.work.glob("site-*.log"))
    assert logs, f"no site.yml output in {cloud.work}"
    values = deploy_secrets(cloud)
    for key in ("stratus_admin_password", "stratus_service_password",
                "stratus_metadata_shared_secret"):
        assert key in values, f"{key} is not among the secrets looked for"
    leaks: list[str] = []
    for log in logs:
        text = log.read_text()
        for what, value in values.items():
            if value in text:
                leaks.append(f"{log.name}: {what}")
        token = FERNET_TOKEN.search(text)
        if token:
            leaks.append(f"{log.name}: a Fernet token ({token[0][:12]}...)")
        if "PRIVATE KEY-----" in text:
            leaks.append(f"{log.name}: a PEM private key")
    assert not leaks, "secrets in the deploy's output:\n" + "\n".join(leaks)
