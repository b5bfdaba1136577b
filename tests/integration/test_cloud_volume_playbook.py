"""The volume modules in real ansible-playbook runs against a real stratus-volume.

stratus-identity and stratus-volume run as processes (SQLite); the test plays the storage
agent of one host over the volume API's storage endpoints in a thread (register/heartbeat,
long-poll the state, report every volume and snapshot ready), as docs/storage-agent.md
describes, so no pool file or tgt target is made (the real agent is exercised by its own
tests). Each converging step runs four times in one playbook: check mode (predicts a change,
makes none), for real (the same diff), again (changed=0) and in check mode again. The flow:
create → unchanged → grow → (shrink refused) → snapshot → info → delete both.
Attachments need a compute API and a guest: cloud_volume_attachment is covered by the unit
tests (tests/unit/test_cloud_volume_modules.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from helpers import IdentityServer
from volume_api import VolumeClient, VolumeServer

pytestmark = [pytest.mark.integration]

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PASSES = ("check", "real", "again", "check-again")
HOST = "vmod-stor1"


class FakeStorageAgent(threading.Thread):
    """Plays stratus-storage-agent for one host: whatever the state asks for is ready."""

    def __init__(self, client: VolumeClient) -> None:
        super().__init__(daemon=True)
        self.client = client
        self.halt = threading.Event()
        self.errors: list[str] = []

    def register(self) -> None:
        resp = self.client.call("POST", "/v3/storage/hosts", json={
            "host": HOST, "portal": "127.0.0.1:3260",
            "iqn_prefix": f"iqn.2010-10.org.stratus:{HOST}", "capacity_gb": 100,
            "free_gb": 100, "formats": ["raw"]})
        if resp.status_code != 200:
            self.errors.append(f"register: {resp.status_code} {resp.text}")

    def run(self) -> None:
        generation: int | None = None
        while not self.halt.is_set():
            try:
                self.register()
                params = {"wait": 1} if generation is None else {"since": generation, "wait": 1}
                resp = self.client.call("GET", f"/v3/storage/hosts/{HOST}/state", params=params)
                if resp.status_code != 200:
                    self.errors.append(f"state: {resp.status_code} {resp.text}")
                    self.halt.wait(1)
                    continue
                st = resp.json()
                generation = st["generation"]
                body = {
                    "volumes": [{"id": v["id"], "size_gb": v["size_gb"], "state": "ready"}
                                for v in st["volumes"]],
                    "snapshots": [{"id": s["id"], "state": "ready"} for s in st["snapshots"]],
                    "exports": [{"attachment_id": e["attachment_id"], "state": "ready"}
                                for e in st["exports"]],
                    "uploads": [{**u, "state": "done"} for u in st["uploads"]]}
                resp = self.client.call("POST", f"/v3/storage/hosts/{HOST}/report", json=body)
                if resp.status_code != 200:
                    self.errors.append(f"report: {resp.status_code} {resp.text}")
            except httpx.HTTPError as exc:
                self.errors.append(repr(exc))
                self.halt.wait(1)


class Stack:
    def __init__(self, root: Path, identity: IdentityServer, volume: VolumeServer) -> None:
        self.root = root
        self.identity = identity
        self.volume = volume
        self.collections = root / "collections"
        (self.collections / "ansible_collections" / "stratus").mkdir(parents=True)
        (self.collections / "ansible_collections" / "stratus" / "cloud").symlink_to(REPO)
        self.clouds_yaml = identity.clouds_yaml()
        self.runs = 0

    def play(self, steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Run each step 4 times (once when it says ``once: true``), all in one playbook; the
        results, per step and pass."""
        self.runs += 1
        out = self.root / f"results-{self.runs}.json"
        body, names, labels = [], [], []
        for i, step in enumerate(steps):
            passes = ("real",) if step.get("once") else PASSES
            labels.append(passes)
            step = {module: {**args, "clouds_yaml": str(self.clouds_yaml)}
                    for module, args in step.items() if module != "once"}
            for n, label in enumerate(passes):
                reg = f"r{i}_{n}"
                names.append(reg)
                body.append({**step, "name": f"step {i} {label}", "register": reg,
                             "check_mode": label.startswith("check"), "ignore_errors": True})
        body.append({
            "name": "Save the results",
            "ansible.builtin.copy": {
                "content": "{{ {" + ", ".join(f"'{r}': {r}" for r in names) + "} | to_json }}",
                "dest": str(out), "mode": "0600"},
            "check_mode": False, "diff": False,
        })
        playbook = self.root / f"play-{self.runs}.yml"
        playbook.write_text(yaml.safe_dump([{
            "hosts": "localhost", "connection": "local", "gather_facts": False,
            "vars": {"ansible_python_interpreter": sys.executable},
            "tasks": body,
        }], sort_keys=False))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "ANSIBLE_"))}
        env.update({
            "ANSIBLE_COLLECTIONS_PATH": str(self.collections),
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_LOCALHOST_WARNING": "0",
            "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0",
        })
        proc = subprocess.run([str(BIN / "ansible-playbook"), "-i", "localhost,",
                               str(playbook), "--diff"], env=env, capture_output=True,
                              text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
        results = json.loads(out.read_text())
        return [{label: results[f"r{i}_{n}"] for n, label in enumerate(passes)}
                for i, passes in enumerate(labels)]


def converged(step: dict[str, Any], what: str) -> dict[str, Any]:
    """The four passes behaved: check predicted the real change, the second run was a no-op."""
    for label, result in step.items():
        assert not result.get("failed"), (what, label, result.get("msg"))
    assert step["check"]["changed"] is True, (what, step["check"])
    assert step["real"]["changed"] is True, (what, step["real"])
    assert step["check"]["diff"] == step["real"]["diff"], what
    assert step["again"]["changed"] is False, (what, step["again"].get("diff"))
    assert step["check-again"]["changed"] is False, (what, step["check-again"].get("diff"))
    return dict(step["real"])


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("vmod")
    identity = IdentityServer(root / "identity", f"sqlite:///{root}/identity.sqlite")
    identity.prepare()
    identity.start()
    volume = VolumeServer(root / "volume", f"sqlite:///{root}/volume.sqlite", identity,
                          extra_env={"STRATUS_VOLUME__SWEEP_INTERVAL": "2"})
    try:
        volume.prepare()
        volume.start()
        yield Stack(root, identity, volume)
    finally:
        volume.stop()
        identity.stop()
    assert "Traceback" not in volume.log(), volume.log()[-3000:]


@pytest.fixture(scope="module")
def agent(stack: Stack) -> Iterator[FakeStorageAgent]:
    tok = stack.identity.token()
    body = httpx.get(f"{stack.identity.url}/v3/auth/tokens",
                     headers={"X-Auth-Token": tok, "X-Subject-Token": tok}).json()
    client = VolumeClient(stack.volume.url, tok, body["token"]["project"]["id"])
    fake = FakeStorageAgent(client)
    fake.register()
    fake.start()
    yield fake
    fake.halt.set()
    fake.join(timeout=10)
    client.close()
    assert fake.errors == [], fake.errors[:3]


def test_volume_modules_converge_and_are_idempotent(stack: Stack,
                                                     agent: FakeStorageAgent) -> None:
    volume, snapshot = "stratus.cloud.cloud_volume", "stratus.cloud.cloud_volume_snapshot"
    results = stack.play([
        # create (check, real, unchanged), grow, a shrink refused
        {volume: {"name": "vmod-data", "size": 1, "description": "vmod",
                  "metadata": {"role": "db"}, "timeout": 30}},
        {volume: {"name": "vmod-data", "size": 2, "timeout": 30}},
        {volume: {"name": "vmod-data", "size": 1}, "once": True},
        # a snapshot, the info
        {snapshot: {"name": "vmod-snap", "volume": "vmod-data", "description": "first",
                    "timeout": 30}},
        {"stratus.cloud.cloud_volume_info": {"name": "vmod-data"}, "once": True},
        # delete the snapshot, then the volume (each waited for until gone)
        {snapshot: {"name": "vmod-snap", "state": "absent", "timeout": 30}},
        {volume: {"name": "vmod-data", "state": "absent", "timeout": 30}},
    ])
    created = converged(results[0], "create")
    vol = created["volume"]
    assert vol["status"] == "available" and vol["size"] == 1
    assert vol["metadata"] == {"role": "db"} and vol["description"] == "vmod"
    assert created["diff"]["after"]["size"] == 1 and created["diff"]["before"] == {}
    assert results[0]["check"]["volume"] is None
    grown = converged(results[1], "grow")
    assert grown["diff"] == {"before": {"size": 1}, "after": {"size": 2}}
    assert grown["volume"]["size"] == 2 and grown["volume"]["status"] == "available"
    assert grown["id"] == vol["id"]
    shrink = results[2]["real"]
    assert shrink["failed"] and "cannot shrink" in shrink["msg"], shrink
    snap = converged(results[3], "snapshot")["snapshot"]
    assert snap["status"] == "available" and snap["volume_id"] == vol["id"]
    assert snap["size"] == 2 and snap["description"] == "first"
    found = results[4]["real"]
    assert not found.get("failed"), found
    assert [(v["id"], v["size"]) for v in found["volumes"]] == [(vol["id"], 2)]
    assert converged(results[5], "snapshot absent")["snapshot"] is None
    assert converged(results[6], "volume absent")["volume"] is None
    admin = agent.client
    assert admin.call("GET", f"/volumes/{vol['id']}").status_code == 404
    assert admin.call("GET", f"/snapshots/{snap['id']}").status_code == 404
