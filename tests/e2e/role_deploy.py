"""A deploy of some of site.yml's roles into a temporary prefix, for the e2e modules that
test one role and its clients (test_object_store_deploy.py): its own supervisord, ports off
the defaults, ``ansible-playbook`` with plays written on the fly, the ``openstack`` client
with the clouds.yaml the identity role wrote. Only the deploy and teardown runs take the e2e
playbook lock (e2e_support.playbook_lock)."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from e2e_support import playbook_lock

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TIMEOUT = 900


def listening(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:port."""
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class Deployed:
    """The deploy: its prefix, a work directory (plays, logs), the identity port, the port
    of the API under test and the extra vars every playbook run gets."""

    prefix: Path
    work: Path
    identity_port: int
    api_port: int
    extra_vars: dict[str, Any]

    @property
    def clouds_yaml(self) -> Path:
        return self.prefix / "etc" / "stratus" / "clouds.yaml"

    @property
    def images_dir(self) -> Path:
        return self.prefix / "var" / "lib" / "stratus" / "images"

    def playbook(self, plays: list[dict[str, Any]], name: str, *args: str,
                 collections: Path | None = None, lock: bool = False) -> str:
        """Runs plays; ``lock``: under the e2e playbook lock (the deploy and teardown)."""
        with playbook_lock() if lock else contextlib.nullcontext():
            return self._playbook(plays, name, *args, collections=collections)

    def _playbook(self, plays: list[dict[str, Any]], name: str, *args: str,
                  collections: Path | None = None) -> str:
        path = self.work / f"{name}.yml"
        path.write_text(yaml.safe_dump(plays, sort_keys=False))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "OS_"))}
        env.update(ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
                   ANSIBLE_ROLES_PATH=str(REPO / "roles"),
                   PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
        if collections is not None:
            env["ANSIBLE_COLLECTIONS_PATH"] = str(collections)
        done = subprocess.run(
            [str(BIN / "ansible-playbook"), "-i", str(REPO / "inventories" / "aio"), str(path),
             "-e", json.dumps(self.extra_vars), *args],
            cwd=REPO, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
            timeout=TIMEOUT, check=False,
        )
        (self.work / f"{name}.log").write_text(done.stdout + done.stderr)
        assert done.returncode == 0, f"{name} failed:\n{done.stdout[-6000:]}"
        return done.stdout

    def openstack(self, *args: str) -> Any:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
        env["OS_CLIENT_CONFIG_FILE"] = str(self.clouds_yaml)
        done = subprocess.run([str(BIN / "openstack"), "--os-cloud", "stratus", *args,
                               "-f", "json"], env=env, capture_output=True, text=True,
                              timeout=300, check=False)
        assert done.returncode == 0, f"openstack {' '.join(args)}: {done.stderr}"
        return json.loads(done.stdout) if done.stdout.strip() else None
