"""Every module's DOCUMENTATION against its argument_spec, and its RETURN against its result.

The options documented (the module's own plus the ``stratus.cloud.auth`` doc
fragment it extends) must be exactly the options of the argument_spec, with
the same type, required, default, choices, elements and aliases, suboptions
included. The keys a module returns are read from the source of its logic
class (the dict literals and ``out[...] =`` of ``result`` for a convergence,
of ``run`` for an ``*_info`` reader): each must be documented in RETURN
(``changed`` and ``warnings`` are Ansible's own).
"""

from __future__ import annotations

import ast
import importlib
import inspect
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from compute_module_fakes import REPO, collections_root

pytestmark = [pytest.mark.unit]

MODULES = sorted(p.stem for p in (REPO / "plugins" / "modules").glob("cloud_*.py"))
PREFIX = "ansible_collections.stratus.cloud.plugins"


@pytest.fixture(scope="module")
def collections_path(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield from collections_root(tmp_path_factory)


def module_class(name: str) -> Any:
    module = importlib.import_module(f"{PREFIX}.modules.{name}")
    base = importlib.import_module(f"{PREFIX}.module_utils.stratus_module").StratusModule
    found = [
        v
        for v in vars(module).values()
        if isinstance(v, type) and issubclass(v, base) and v is not base
    ]
    assert len(found) == 1, f"{name} declares {len(found)} module classes"
    return module, found[0]


def fragment_options() -> dict[str, Any]:
    fragment = importlib.import_module(f"{PREFIX}.doc_fragments.auth").ModuleDocFragment
    return yaml.safe_load(fragment.DOCUMENTATION)["options"]


def documented(option: dict[str, Any]) -> dict[str, Any]:
    """An option of DOCUMENTATION or of an argument_spec, in one comparable shape."""
    out = {
        "type": option.get("type", "str"),
        "required": option.get("required", False),
        "default": option.get("default"),
        "choices": option.get("choices"),
        "elements": option.get("elements"),
        "aliases": sorted(option.get("aliases", [])),
    }
    subs = option.get("options") or option.get("suboptions")
    if subs:
        out["suboptions"] = {k: documented(v) for k, v in subs.items()}
    return out


def test_every_module_is_checked() -> None:
    assert len(MODULES) == 21, MODULES


@pytest.mark.parametrize("name", MODULES)
def test_documentation_options_match_the_argument_spec(collections_path: Path, name: str) -> None:
    module, cls = module_class(name)
    doc = yaml.safe_load(module.DOCUMENTATION)
    assert doc["module"] == name
    assert doc.get("extends_documentation_fragment") == ["stratus.cloud.auth"]
    options = {**fragment_options(), **doc["options"]}
    utils = importlib.import_module(f"{PREFIX}.module_utils.stratus_module")
    spec = {**utils.auth_argument_spec(), **vars(cls)["argument_spec"]}
    assert sorted(options) == sorted(spec)
    for key in spec:
        assert documented(options[key]) == documented(spec[key]), key
        assert options[key].get("description"), key


def returned_keys(logic: type) -> set[str]:
    """The string keys of the dicts the logic class's result method returns (or builds as
    ``out``)."""
    method = "run" if "Info" in logic.__name__ else "result"
    tree = ast.parse(textwrap.dedent(inspect.getsource(getattr(logic, method))))
    keys: set[str] = set()
    for node in ast.walk(tree):
        built = None
        if isinstance(node, ast.Return) or (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "out" for t in node.targets)
        ):
            built = node.value
        elif (
            isinstance(node, ast.Subscript)
            and isinstance(node.ctx, ast.Store)
            and isinstance(node.value, ast.Name)
            and node.value.id == "out"
            and isinstance(node.slice, ast.Constant)
        ):
            keys.add(node.slice.value)
        if isinstance(built, ast.Dict):
            keys.update(
                k.value
                for k in built.keys
                if isinstance(k, ast.Constant) and isinstance(k.value, str)
            )
    return keys


@pytest.mark.parametrize("name", MODULES)
def test_return_documents_what_the_module_returns(collections_path: Path, name: str) -> None:
    module, cls = module_class(name)
    returned = yaml.safe_load(module.RETURN)
    keys = returned_keys(cls.logic) - {"changed", "warnings"}
    assert keys, f"no result keys found for {name}"
    assert keys <= set(returned), sorted(keys - set(returned))
    for key, value in returned.items():
        assert value.get("description") and value.get("returned") and value.get("type"), key
