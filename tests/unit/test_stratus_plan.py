"""plugins/module_utils/stratus_plan.py: check mode shows the plan, a real run applies it.

``Convergence.run`` is the one place where check mode and a real run part:
the difference is computed once by ``plan()``; check mode runs no step and
shows ``current`` (through ``finish``); a real run runs the steps in order,
each on what the previous returned, then ``finish``.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from compute_module_fakes import collections_root

pytestmark = [pytest.mark.unit]


@pytest.fixture(scope="module")
def collections_path(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield from collections_root(tmp_path_factory)


@pytest.fixture(scope="module")
def sp(collections_path: Path) -> Any:
    return importlib.import_module(
        "ansible_collections.stratus.cloud.plugins.module_utils.stratus_plan"
    )


def make_convergence(sp: Any, writes: list[str], finish: bool) -> Any:
    class Thing(sp.Convergence):
        def plan(self) -> Any:
            self.diff.add("size", 1, 2)
            self.diff.add("name", "a", "a")  # the same: not recorded
            plan = self.new_plan(
                {"size": 1}, finish=(lambda r: {**r, "shown": True}) if finish else None
            )

            @plan.then
            def grow(thing: dict[str, Any]) -> dict[str, Any]:
                writes.append("grow")
                return {**thing, "size": 2}

            plan.then(lambda thing: writes.append("read again") or {**thing, "again": True})
            return plan

        def result(self, resource: Any) -> dict[str, Any]:
            return {"changed": self.diff.changed, "diff": self.diff.diff, "thing": resource}

    return Thing


@pytest.mark.parametrize("finish", [False, True])
def test_check_mode_shows_the_plan_and_a_real_run_applies_it(sp: Any, finish: bool) -> None:
    writes: list[str] = []
    thing = make_convergence(sp, writes, finish)
    checked = thing({}, check_mode=True).run()
    assert writes == []
    real = thing({}, check_mode=False).run()
    assert writes == ["grow", "read again"]
    assert checked["changed"] is real["changed"] is True
    assert checked["diff"] == real["diff"] == {"before": {"size": 1}, "after": {"size": 2}}
    shown = {"shown": True} if finish else {}
    assert checked["thing"] == {"size": 1, **shown}
    assert real["thing"] == {"size": 2, "again": True, **shown}


def test_difference(sp: Any) -> None:
    diff = sp.Difference()
    assert not diff.changed and diff.diff == {"before": {}, "after": {}}
    assert diff.add("a", 1, 1) is False and "a" not in diff
    assert diff.add("a", 1, 2) is True and "a" in diff and diff.changed
    diff.create({"name": "x"})
    assert diff.diff == {"before": {}, "after": {"name": "x"}}
    diff.delete({"name": "x"})
    assert diff.diff == {"before": {"name": "x"}, "after": {}}


def test_a_plan_without_steps_changes_nothing(sp: Any) -> None:
    plan = sp.Plan(sp.Difference(), current={"id": 1})
    assert plan.preview() == plan.apply() == {"id": 1}
    assert not plan.diff.changed
