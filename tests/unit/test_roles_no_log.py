"""Every task in the roles and playbooks that uses a secret has ``no_log``.

A scan of the YAML (not ansible-lint, which has no such rule): a task whose
arguments, loop or vars name a password-ish variable in a Jinja expression
(``*password*``, ``*secret*``, ``*passwd*``) must set ``no_log``
to something other than false, so the value never reaches Ansible's output.
Conditions (``when``, ``that``, ``changed_when``, ``failed_when``) are left
out: Ansible prints the expression, not the value.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
# A variable (not an attribute, not a quoted key) with a long-lived secret's name;
# directories and paths of secrets are not secrets.
SECRET = re.compile(
    r"(?<![.\w'\"])[a-z_0-9]*(password|secret|passwd)[a-z_0-9]*(?<!_dir)(?<!_path)(?<!_file)\b"
)
# include_role / import_tasks print nothing of their vars; the included tasks are scanned.
INCLUDES = {"ansible.builtin.include_role", "ansible.builtin.import_role",
            "ansible.builtin.include_tasks", "ansible.builtin.import_tasks",
            "include_role", "import_role", "include_tasks", "import_tasks"}
JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.S)
CONDITIONS = {"name", "when", "that", "changed_when", "failed_when", "until", "tags"}
BLOCKS = ("block", "rescue", "always")


def tasks_in(items: Any) -> Iterator[dict[str, Any]]:
    """The tasks of a task list, through blocks (a block's own keys count too)."""
    for item in items or []:
        if not isinstance(item, dict):
            continue
        yield item
        for key in BLOCKS:
            yield from tasks_in(item.get(key))


def task_files() -> list[Path]:
    files = sorted((ROOT / "roles").glob("*/tasks/*.yml")) + sorted((ROOT / "roles").glob(
        "*/handlers/*.yml"))
    return files


def play_tasks(path: Path) -> Iterator[dict[str, Any]]:
    doc = yaml.safe_load(path.read_text())
    if not isinstance(doc, list):
        return
    if path.parts[-2] == "playbooks" or any(isinstance(d, dict) and "hosts" in d for d in doc):
        for play in doc:
            if isinstance(play, dict):
                for key in ("pre_tasks", "tasks", "post_tasks", "handlers"):
                    yield from tasks_in(play.get(key))
    else:
        yield from tasks_in(doc)


def secrets_used(task: dict[str, Any]) -> set[str]:
    """Secret-looking variable names inside Jinja expressions of the task's arguments."""
    found: set[str] = set()
    if INCLUDES & set(task):
        return found
    for key, value in task.items():
        if key in CONDITIONS or key in BLOCKS:
            continue
        for expr in JINJA.findall(yaml.safe_dump(value, width=10_000)):
            found.update(m.group(0) for m in SECRET.finditer(expr))
    return found


def unprotected(path: Path) -> list[str]:
    out = []
    for task in play_tasks(path):
        names = secrets_used(task)
        if names and task.get("no_log") in (None, False, "false"):
            out.append(f"{path.name}: task {task.get('name')!r} uses "
                       f"{sorted(names)} without no_log")
    return out


def test_every_task_that_uses_a_secret_has_no_log() -> None:
    files = task_files() + sorted((ROOT / "playbooks").glob("*.yml"))
    assert len(files) > 20
    problems = [p for f in files for p in unprotected(f)]
    assert not problems, "\n".join(problems)


def test_the_scan_finds_a_task_without_no_log(tmp_path: Path) -> None:
    bad = tmp_path / "main.yml"
    bad.write_text(
        "- name: Write it\n  ansible.builtin.copy:\n"
        "    content: '{{ identity_admin_password }}'\n    dest: /tmp/x\n"
        "- name: Guarded\n  no_log: true\n  ansible.builtin.copy:\n"
        "    content: '{{ database_postgresql_password }}'\n    dest: /tmp/y\n"
        "- name: A block\n  block:\n    - name: Inner\n      ansible.builtin.debug:\n"
        "        msg: '{{ metadata_shared_secret }}'\n"
    )
    problems = unprotected(bad)
    assert len(problems) == 2 and "Write it" in problems[0] and "Inner" in problems[1]


def secret_options(spec: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Options (at any depth) named ``*_password`` / ``*_secret`` in an argument spec."""
    if not isinstance(spec, dict):
        return
    for name, option in (spec.get("options") or {}).items():
        if not isinstance(option, dict):
            continue
        if re.fullmatch(r"[a-z_0-9]*_(password|secret)", name):
            yield f"{path}{name}", option
        yield from secret_options(option, f"{path}{name}.")


def test_every_secret_role_variable_is_no_log_in_its_argument_spec() -> None:
    problems, count = [], 0
    for path in sorted((ROOT / "roles").glob("*/meta/argument_specs.yml")):
        doc = yaml.safe_load(path.read_text())
        for entry, spec in (doc.get("argument_specs") or {}).items():
            for name, option in secret_options(spec):
                count += 1
                if option.get("no_log") is not True:
                    problems.append(f"{path.parts[-3]} ({entry}): {name} lacks no_log: true")
    assert count >= 10  # identity_admin_password, database_postgresql_password, ...
    assert not problems, "\n".join(problems)


# Where the roles write secrets: stratus.conf and its sections, clouds.yaml, openrc,
# the Fernet keys. Their tasks must set a mode no other user can read.
SECRET_DESTS = re.compile(
    r"common_config_file|common_config_fragments_dir|clouds_yaml|openrc|fernet_key_repository"
)
PRIVATE_MODES = {"0600", "0640", "0700", "0750", "0400", "0440"}
WRITERS = {"ansible.builtin.template", "ansible.builtin.copy", "ansible.builtin.assemble",
           "ansible.builtin.file"}


def test_secret_files_are_written_with_private_modes() -> None:
    problems, count = [], 0
    for path in task_files():
        for task in play_tasks(path):
            for module in WRITERS & set(task):
                args = task[module] if isinstance(task[module], dict) else {}
                dest = str(args.get("dest") or args.get("path") or "")
                if not SECRET_DESTS.search(dest) or args.get("state") == "absent":
                    continue
                count += 1
                if str(args.get("mode")) not in PRIVATE_MODES:
                    problems.append(f"{path.name}: {task.get('name')!r} writes {dest} "
                                    f"with mode {args.get('mode')!r}")
    assert count >= 4
    assert not problems, "\n".join(problems)
