"""README.md documents every role variable: each name in a role's defaults/main.yml has a
row in the README's "Role variables" tables (the README is where an operator looks first)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


def undocumented(readme: str, roles_dir: Path) -> dict[str, list[str]]:
    """Role name → its default variables that have no `name` row in ``readme``."""
    missing: dict[str, list[str]] = {}
    for defaults in sorted(roles_dir.glob("*/defaults/main.yml")):
        names = yaml.safe_load(defaults.read_text()) or {}
        absent = [name for name in names if f"| `{name}` |" not in readme]
        if absent:
            missing[defaults.parents[1].name] = absent
    return missing


def test_every_role_variable_has_a_readme_row() -> None:
    assert undocumented((ROOT / "README.md").read_text(), ROOT / "roles") == {}


def test_the_check_sees_a_missing_row(tmp_path: Path) -> None:
    (tmp_path / "r" / "defaults").mkdir(parents=True)
    (tmp_path / "r" / "defaults" / "main.yml").write_text("r_a: 1\nr_b: 2\n")
    assert undocumented("| `r_a` | `1` | A. |\nmentions `r_b` in prose", tmp_path) == {
        "r": ["r_b"]}
