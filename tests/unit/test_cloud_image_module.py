"""cloud_image's decision logic against a fake image API, and the modules' documentation.

The logic takes the API as a parameter (no AnsibleModule patching): each case
runs in check mode first, then for real, and the two must report the same
``changed`` and ``diff`` while only the real run calls anything that writes.
The documentation test compares what ansible-doc shows (with the shared auth
fragment merged) with each module's argument_spec, option by option.
"""

from __future__ import annotations

import copy
import importlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = [pytest.mark.unit]

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
MODULES = ("cloud_image", "cloud_image_info")


@pytest.fixture(scope="module")
def collections_path(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("collections")
    (root / "ansible_collections" / "stratus").mkdir(parents=True)
    (root / "ansible_collections" / "stratus" / "cloud").symlink_to(REPO)
    sys.path.insert(0, str(root))
    yield root
    sys.path.remove(str(root))
    for name in [n for n in sys.modules if n.startswith("ansible_collections.stratus")]:
        del sys.modules[name]


@pytest.fixture(scope="module")
def mod(collections_path: Path) -> Any:
    return importlib.import_module(
        "ansible_collections.stratus.cloud.plugins.module_utils.stratus_image")


class FakeImages:
    """The ImageApi methods cloud_image uses, over a dict; records the writes."""

    project_id = "p-mine"

    def __init__(self, images: list[dict[str, Any]] | None = None) -> None:
        self.images = {i["id"]: i for i in images or []}
        self.writes: list[tuple[str, Any]] = []
        self.upload_checksum = "d41d8cd98f00b204e9800998ecf8427e"

    def find(self, name: str, owner: str | None = None) -> list[dict[str, Any]]:
        return [copy.deepcopy(i) for i in self.images.values()
                if i["name"] == name and (owner is None or i["owner"] == owner)]

    def get(self, image_id: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.images.get(image_id))

    def create(self, attrs: dict[str, Any]) -> dict[str, Any]:
        self.writes.append(("create", attrs))
        image = {"id": f"id-{len(self.images) + 1}", "status": "queued", "owner": self.project_id,
                 "checksum": None, "tags": [], "protected": False, "visibility": "shared",
                 "min_disk": 0, "min_ram": 0, **attrs}
        self.images[image["id"]] = image
        return copy.deepcopy(image)

    def patch(self, image_id: str, ops: list[dict[str, Any]]) -> dict[str, Any]:
        self.writes.append(("patch", ops))
        image = self.images[image_id]
        for op in ops:
            image[op["path"][1:]] = op["value"]
        return copy.deepcopy(image)

    def upload(self, image_id: str, filename: str, timeout: int) -> None:
        self.writes.append(("upload", filename))
        self.images[image_id].update(status="active", checksum=self.upload_checksum)

    def wait_active(self, image_id: str, timeout: int) -> dict[str, Any]:
        return copy.deepcopy(self.images[image_id])

    def delete(self, image_id: str) -> None:
        self.writes.append(("delete", image_id))
        del self.images[image_id]


def params(**kw: Any) -> dict[str, Any]:
    base = {"name": "img", "state": "present", "filename": None, "disk_format": None,
            "container_format": None, "visibility": None, "min_disk": None, "min_ram": None,
            "properties": None, "tags": None, "is_protected": None, "checksum": None,
            "wait": True, "timeout": 60}
    base.update(kw)
    return base


def existing(**kw: Any) -> dict[str, Any]:
    image = {"id": "id-old", "name": "img", "owner": "p-mine", "status": "active",
             "checksum": "d41d8cd98f00b204e9800998ecf8427e", "disk_format": "qcow2",
             "container_format": "bare", "visibility": "shared", "min_disk": 0, "min_ram": 0,
             "protected": False, "tags": ["a"], "os_distro": "debian"}
    image.update(kw)
    return image


def check_then_run(mod: Any, api: FakeImages, p: dict[str, Any]) -> dict[str, Any]:
    """Check mode first (no writes), then the real run; both must agree."""
    checked = mod.ImageConvergence(api, p, check_mode=True).run()
    assert api.writes == [], "check mode must not write"
    real = mod.ImageConvergence(api, p, check_mode=False).run()
    assert checked["changed"] == real["changed"]
    assert checked["diff"] == real["diff"]
    again = mod.ImageConvergence(api, p, check_mode=False).run()
    assert again["changed"] is False and again["diff"] == {"before": {}, "after": {}}
    return dict(real)


def test_create_and_upload_then_nothing(mod: Any, tmp_path: Path) -> None:
    data = tmp_path / "empty.img"
    data.touch()
    api = FakeImages()
    result = check_then_run(mod, api, params(filename=str(data), properties={"x": 1, "y": True},
                                             tags=["t"], min_ram=64))
    assert result["changed"] and result["image"]["status"] == "active"
    assert result["diff"]["before"] == {}
    assert result["diff"]["after"]["checksum"] == "d41d8cd98f00b204e9800998ecf8427e"
    assert result["diff"]["after"]["properties"] == {"x": "1", "y": "true"}
    kinds = [w[0] for w in api.writes]
    assert kinds == ["create", "upload"]
    assert api.writes[0][1]["disk_format"] == "qcow2" and api.writes[0][1]["x"] == "1"


def test_update_patches_only_what_differs(mod: Any) -> None:
    api = FakeImages([existing()])
    wanted = params(min_ram=128, tags=["b", "a"], is_protected=True,
                    properties={"os_distro": "debian", "new": "v"})
    result = check_then_run(mod, api, wanted)
    assert result["diff"] == {
        "before": {"min_ram": 0, "is_protected": False, "tags": ["a"], "properties": {"new": None}},
        "after": {"min_ram": 128, "is_protected": True, "tags": ["a", "b"],
                  "properties": {"new": "v"}},
    }
    (kind, ops), = api.writes
    assert kind == "patch"
    assert {"op": "add", "path": "/new", "value": "v"} in ops
    assert {"op": "replace", "path": "/protected", "value": True} in ops


def test_same_name_and_checksum_is_not_uploaded_again(mod: Any, tmp_path: Path) -> None:
    data = tmp_path / "empty.img"
    data.touch()
    api = FakeImages([existing()])
    result = check_then_run(mod, api, params(filename=str(data)))
    assert result["changed"] is False and api.writes == []


def test_different_data_for_an_existing_image_fails_in_both_modes(mod: Any) -> None:
    api = FakeImages([existing()])
    for check in (True, False):
        with pytest.raises(mod.StratusError, match="the data of an image cannot change"):
            mod.ImageConvergence(api, params(checksum="0" * 32), check).run()
    assert api.writes == []


def test_a_queued_image_gets_its_data_and_a_killed_one_is_replaced(
    mod: Any, tmp_path: Path
) -> None:
    data = tmp_path / "empty.img"
    data.touch()
    api = FakeImages([existing(status="queued", checksum=None)])
    result = check_then_run(mod, api, params(filename=str(data)))
    assert result["diff"]["after"]["status"] == "active"
    assert [w[0] for w in api.writes] == ["upload"]
    api = FakeImages([existing(status="killed", checksum=None)])
    result = check_then_run(mod, api, params(filename=str(data)))
    assert result["diff"]["before"]["status"] == "killed"
    assert [w[0] for w in api.writes] == ["delete", "create", "upload"]


def test_format_changes_only_without_data(mod: Any) -> None:
    api = FakeImages([existing()])
    with pytest.raises(mod.StratusError, match="cannot become raw"):
        mod.ImageConvergence(api, params(disk_format="raw"), True).run()
    api = FakeImages([existing(status="queued", checksum=None)])
    result = check_then_run(mod, api, params(disk_format="raw"))
    assert result["diff"]["after"] == {"disk_format": "raw"}


def test_absent_deletes_every_owned_image_of_the_name(mod: Any) -> None:
    api = FakeImages([existing(), existing(id="id-2"), existing(id="id-3", owner="p-other")])
    result = check_then_run(mod, api, params(state="absent"))
    assert [i["id"] for i in result["diff"]["before"]["images"]] == ["id-old", "id-2"]
    assert sorted(api.images) == ["id-3"]


def test_protected_images_need_is_protected_false_to_be_deleted(mod: Any) -> None:
    api = FakeImages([existing(protected=True)])
    with pytest.raises(mod.StratusError, match="is protected"):
        mod.ImageConvergence(api, params(state="absent"), True).run()
    check_then_run(mod, api, params(state="absent", is_protected=False))
    assert api.images == {}


def test_a_wrong_checksum_option_is_caught_after_the_upload(mod: Any, tmp_path: Path) -> None:
    data = tmp_path / "empty.img"
    data.touch()
    api = FakeImages()
    with pytest.raises(mod.StratusError, match="is not the checksum of"):
        mod.ImageConvergence(api, params(filename=str(data), checksum="f" * 32), False).run()
    assert api.images == {}, "the image made by the failed run is removed"


def _spec_of(option: dict[str, Any]) -> dict[str, Any]:
    out = {"type": option.get("type", "str"), "required": option.get("required", False),
           "default": option.get("default"), "choices": option.get("choices"),
           "elements": option.get("elements"), "aliases": sorted(option.get("aliases", []))}
    if "options" in option or "suboptions" in option:
        subs = option.get("options") or option.get("suboptions")
        out["sub"] = {k: _spec_of(v) for k, v in subs.items()}
    return out


@pytest.mark.parametrize("name", MODULES)
def test_documentation_matches_the_argument_spec(collections_path: Path, name: str) -> None:
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(collections_path)}
    done = subprocess.run([str(BIN / "ansible-doc"), "--json", f"stratus.cloud.{name}"],
                          env=env, capture_output=True, text=True, check=True)
    doc = json.loads(done.stdout)[f"stratus.cloud.{name}"]
    module = importlib.import_module(f"ansible_collections.stratus.cloud.plugins.modules.{name}")
    utils = importlib.import_module(
        "ansible_collections.stratus.cloud.plugins.module_utils.stratus_module")
    cls = next(v for v in vars(module).values()
               if isinstance(v, type) and issubclass(v, utils.StratusModule)
               and v is not utils.StratusModule)
    spec = {**utils.auth_argument_spec(), **cls.argument_spec}
    documented = {k: _spec_of(v) for k, v in doc["doc"]["options"].items()}
    assert documented == {k: _spec_of(v) for k, v in spec.items()}
    for option in doc["doc"]["options"].values():
        assert option.get("description"), option
    examples = yaml.safe_load(doc["examples"])
    assert isinstance(examples, list) and all(f"stratus.cloud.{name}" in t for t in examples)
    returned = yaml.safe_load(doc["return"]) if isinstance(doc["return"], str) else doc["return"]
    assert returned and all("description" in v and "returned" in v for v in returned.values())
