"""The one naming rule of host interfaces (issue 16): ``<prefix>-<kind><id>`` in 15 chars."""

from __future__ import annotations

import pytest

from stratus.contracts.network import ModelError, interface_name, tap_name

pytestmark = pytest.mark.unit

PORT = "1ba43184-e0aa-4bbb-8ccc-000000000001"


def test_tap_name_is_the_prefix_a_kind_and_the_id_cut_to_15() -> None:
    assert tap_name("st", PORT) == "st-tp1ba43184e0"
    assert tap_name("t16n", PORT) == "t16n-tp1ba43184"
    assert tap_name("a", PORT) == "a-tp1ba43184e0a"
    for prefix in ("a", "st", "t16n"):
        assert len(tap_name(prefix, PORT)) == 15


@pytest.mark.parametrize("prefix", ["", "St", "1st", "stra", "strat", "s-t", "s_t", "st\n"])
def test_a_bad_deploy_prefix_is_refused_naming_the_rule(prefix: str) -> None:
    if prefix == "stra":
        assert tap_name(prefix, PORT).startswith("stra-tp")
        return
    with pytest.raises(ModelError, match="deploy_prefix"):
        tap_name(prefix, PORT)


def test_no_prefix_owns_another_prefixs_names() -> None:
    """The dash after the prefix: ``s`` + ``tap`` never reads as deploy ``stap``'s."""
    assert not interface_name("stap", "tp", PORT).startswith("s-")
    assert not tap_name("st", PORT).startswith("stt-")
    assert interface_name("st", "vx", "101") == "st-vx101"
