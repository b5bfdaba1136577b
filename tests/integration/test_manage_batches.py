"""The common role's stratus-manage batches (tasks/service_manage.yml, tasks/manage_run.yml),
run for real by ansible-playbook with a stand-in for stratus-manage that records each run.

With ``common_manage_defer`` (site.yml's controller play), the steps of a service that is
already current wait and run in one process, in the same order, with the steps of the next
service that is not current; a service whose environment gives a variable another value
than the waiting steps' runs on its own after them; ``manage_defer: false`` keeps a service's
steps in place; the play's end runs what is left. Without it every service runs its own.
A failing secret step fails the host with a message naming the services of its batch and
none of the secret output. The collection's lookup stratus.cloud.template renders as
ansible.builtin.template does. Takes about 10 s.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

# prints {"changed": ...} as stratus-manage run-steps does; records the steps and the
# variables of the environment the services' steps use; fails on a step named "fail"
FAKE = """\
import json, os, sys
steps = [json.loads(a.split("=", 1)[1]) for a in sys.argv[1:] if a.startswith("--step=")]
env = {k: v for k, v in os.environ.items() if k.startswith("ZMB_")}
with open(os.environ["LOG_ZMB"], "a") as log:
    log.write(json.dumps({"argv": sys.argv[1:], "steps": steps, "env": env}) + "\\n")
if ["fail"] in steps:
    print("SECRET-OUTPUT-zmb")
    sys.stderr.write("step 2: fail: it failed\\n")
    sys.exit(3)
print(json.dumps({"changed": ["change"] in steps}))
"""

PLAYBOOK = """\
- name: Services' stratus-manage steps
  hosts: all
  gather_facts: false
  tasks:
    - name: A service
      ansible.builtin.include_role:
        name: common
        tasks_from: service_manage
      vars:
        common_service: "{{ item.service }}"
        _common_service_current: "{{ item.current }}"
      loop: "{{ zmb_services }}"
      loop_control:
        label: "{{ item.service.name }}"
  post_tasks:
    - name: The steps left for the end of the play
      ansible.builtin.include_role:
        name: common
        tasks_from: manage_run
        apply:
          tags: [always]
      when: _common_manage_pending | default([]) | length > 0
      tags: [always]
"""


def service(name: str, current: bool, steps: list[list[str]], env: dict[str, str] | None = None,
            secret: bool = False, defer: bool | None = None) -> dict[str, Any]:
    manage: list[dict[str, Any]] = [{"args": s} for s in steps]
    if env:
        manage[0]["environment"] = env
    if secret:
        manage[-1]["secret"] = True
    described: dict[str, Any] = {"name": name, "manage": manage}
    if defer is not None:
        described["manage_defer"] = defer
    return {"service": described, "current": current}


def run(tmp_path: Path, services: list[dict[str, Any]], defer: bool) -> tuple[int, str, list[Any]]:
    fake = tmp_path / "fake-manage.py"
    fake.write_text(FAKE)
    log = tmp_path / "runs.jsonl"
    log.unlink(missing_ok=True)
    (tmp_path / "play.yml").write_text(PLAYBOOK)
    inventory = {"all": {"hosts": {"zmb": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}}
    (tmp_path / "inventory.json").write_text(json.dumps(inventory))
    extra = {"_common_manage": [sys.executable, str(fake)], "common_state_dir": str(tmp_path),
             "common_manage_defer": defer, "zmb_services": services}
    (tmp_path / "extra.json").write_text(json.dumps(extra))
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
           "ANSIBLE_ROLES_PATH": str(REPO / "roles"), "ANSIBLE_NOCOLOR": "1",
           "LOG_ZMB": str(log), "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.run([str(BIN / "ansible-playbook"), "-i", str(tmp_path / "inventory.json"),
                           "-e", f"@{tmp_path / 'extra.json'}", str(tmp_path / "play.yml")],
                          capture_output=True, text=True, env=env, timeout=240, check=False)
    runs = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return proc.returncode, proc.stdout + proc.stderr, runs


def test_current_services_wait_and_run_in_order_with_the_next(tmp_path: Path) -> None:
    services = [
        service("a", True, [["a1"], ["a2"]], {"ZMB_A": "1"}),
        service("b", True, [["b1"]], {"ZMB_B": "2"}, secret=True),
        service("c", False, [["c1"]]),
        service("d", True, [["d1"]], {"ZMB_X": "x"}),
        service("e", True, [["e1"]], {"ZMB_X": "y"}),
        service("f", True, [["f1"]], defer=False),
        service("g", True, [["g1"], ["change"]]),
        service("h", True, [["h1"]], {"ZMB_H": "h"}),
    ]
    rc, output, runs = run(tmp_path, services, defer=True)
    assert rc == 0, output
    assert [r["steps"] for r in runs] == [
        # a and b waited for c, which is not current
        [["a1"], ["a2"], ["b1"], ["c1"]],
        # e gives ZMB_X another value: d's steps run first, on their own
        [["d1"]],
        [["e1"]],
        # f's steps cannot wait
        [["f1"]],
        # the end of the play
        [["g1"], ["change"], ["h1"]],
    ]
    assert [r["env"] for r in runs] == [
        {"ZMB_A": "1", "ZMB_B": "2"}, {"ZMB_X": "x"}, {"ZMB_X": "y"}, {}, {"ZMB_H": "h"}]
    assert "Run the stratus-manage steps of a, b, c" in output
    assert "Run the stratus-manage steps of g, h" in output
    # the batch with b's secret step hides its output; the last batch changed something
    assert "changed=1" in output


def test_without_defer_each_service_runs_its_own(tmp_path: Path) -> None:
    services = [service("a", True, [["a1"]]), service("b", True, [["b1"]]),
                service("c", False, [["c1"]])]
    rc, output, runs = run(tmp_path, services, defer=False)
    assert rc == 0, output
    assert [r["steps"] for r in runs] == [[["a1"]], [["b1"]], [["c1"]]]


def test_a_failing_secret_batch_names_its_services_not_its_output(tmp_path: Path) -> None:
    services = [service("a", True, [["a1"]]),
                service("b", False, [["b1"], ["fail"]], {"ZMB_B": "secret"}, secret=True),
                service("c", False, [["c1"]])]
    rc, output, runs = run(tmp_path, services, defer=True)
    assert rc != 0
    assert "stratus-manage run-steps failed for a, b (exit 3): step 2: fail: it failed" in output
    assert "SECRET-OUTPUT-zmb" not in output
    # the host stopped at the failure: c's steps never ran
    assert [r["steps"] for r in runs] == [[["a1"], ["b1"], ["fail"]]]


LOOKUP_PLAYBOOK = """\
- name: The two template lookups
  hosts: all
  gather_facts: false
  vars:
    zmb_nested: {list: [1, 2], text: "{{ inventory_hostname }}-t"}
    zmb_x: {extra: x}
  tasks:
    - name: Both renderings
      ansible.builtin.copy:
        dest: "{{ zmb_out }}/{{ item.0 }}"
        content: "{{ item.1 }}"
        mode: "0600"
      loop:
        - [builtin, "{{ lookup('ansible.builtin.template', 'zmb.j2', template_vars=zmb_x) }}"]
        - [stratus, "{{ lookup('stratus.cloud.template', 'zmb.j2', template_vars=zmb_x) }}"]
"""


def test_the_collections_template_lookup_renders_as_the_builtin_one(tmp_path: Path) -> None:
    """stratus.cloud.template: the same text as ansible.builtin.template (ansible_managed, the
    task's variables, template_vars, trim_blocks), and the task's variables unchanged."""
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "zmb.j2").write_text(
        "# {{ ansible_managed }}\n{% for i in zmb_nested.list %}\n{{ i }}\n{% endfor %}\n"
        "{{ zmb_nested.text }} {{ extra }} {{ inventory_hostname }}\n")
    (tmp_path / "play.yml").write_text(LOOKUP_PLAYBOOK)
    inventory = {"all": {"hosts": {"zmb": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}}
    (tmp_path / "inventory.json").write_text(json.dumps(inventory))
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_COLLECTIONS_PATH": str(REPO / ".ansible" / "collections"),
           "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.run([str(BIN / "ansible-playbook"), "-i", str(tmp_path / "inventory.json"),
                           "-e", f"zmb_out={tmp_path}", str(tmp_path / "play.yml")],
                          capture_output=True, text=True, env=env, timeout=240, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rendered = (tmp_path / "stratus").read_text()
    assert rendered == (tmp_path / "builtin").read_text()
    assert rendered == "# Ansible managed\n1\n2\nzmb-t x zmb\n"
