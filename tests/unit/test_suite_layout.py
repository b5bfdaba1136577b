"""The test tree itself: pytest collects the whole suite only if no two test modules share
a basename (the test folders are not packages, so ``rootdir``-relative imports collide and
pytest stops with "import file mismatch" before running anything)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

TESTS = Path(__file__).resolve().parents[1]


def duplicate_basenames(root: Path) -> dict[str, list[str]]:
    """Map each test-module basename found more than once under ``root`` to its paths."""
    seen: dict[str, list[str]] = defaultdict(list)
    for path in sorted(root.rglob("test_*.py")):
        if "__pycache__" in path.parts or (path.parent / "__init__.py").exists():
            continue
        seen[path.name].append(str(path.relative_to(root)))
    return {name: paths for name, paths in seen.items() if len(paths) > 1}


def test_no_two_test_modules_share_a_basename() -> None:
    assert duplicate_basenames(TESTS) == {}


def test_the_check_finds_a_duplicate(tmp_path: Path) -> None:
    for folder in ("unit", "integration"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "test_same.py").write_text("")
    (tmp_path / "unit" / "test_other.py").write_text("")
    assert duplicate_basenames(tmp_path) == {
        "test_same.py": ["integration/test_same.py", "unit/test_same.py"]
    }
