"""stratus.common.validation: every helper of the one request-body reader, under the
four APIs' dialects, with their exact wording.

The dialects are the services' own: NEUTRON (stratus.network.views), NOVA
(stratus.compute.views), KEYSTONE (stratus.identity.views), GLANCE (stratus.image.views).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from starlette.datastructures import QueryParams

from stratus.common.errors import BadRequest
from stratus.common.validation import Dialect, Fields
from stratus.compute.views import NOVA
from stratus.identity.views import KEYSTONE
from stratus.image.views import GLANCE
from stratus.network.views import NEUTRON

pytestmark = pytest.mark.unit


NET, NOV, KEY, GLA = Fields(NEUTRON), Fields(NOVA), Fields(KEYSTONE), Fields(GLANCE)


def says(message: str) -> Any:
    """pytest.raises for a 400 with exactly ``message``."""
    return pytest.raises(BadRequest, match="^" + re.escape(message) + "$")


# ---- the body -----------------------------------------------------------------------------


@pytest.mark.parametrize("body", [None, [], {}, {"network": 1}, {"network": []}])
def test_body_must_hold_the_object(body: Any) -> None:
    with says("Resource body required: a JSON object with a 'network' object."):
        NET.body(body, "network")
    with says("Invalid input: the body must be a JSON object with a 'network' object."):
        NOV.body(body, "network")
    with says("The request body must be a JSON object with a 'network' object."):
        KEY.body(body, "network")


def test_body_is_the_object_itself_or_a_copy_as_the_dialect_says() -> None:
    inner = {"name": "x"}
    assert NET.body({"network": inner}, "network") is inner
    copied = NOV.body({"network": inner}, "network")
    assert copied == inner and copied is not inner


def test_a_dialect_without_a_template_says_so() -> None:
    with pytest.raises(LookupError, match="'body'"):
        GLA.body(None, "image")


def test_bulk_one_object_or_a_list() -> None:
    assert NET.bulk({"network": {"a": 1}}, "network", "networks") == ([{"a": 1}], False)
    assert NET.bulk({"networks": [{"a": 1}, {}]}, "network", "networks") == (
        [{"a": 1}, {}], True)
    # both keys: the single object is read
    assert NET.bulk({"network": {}, "networks": 1}, "network", "networks") == ([{}], False)
    bads: tuple[Any, ...] = ([], {}, [{}, 1], "x")
    for bad in bads:
        with says("'networks' must be a non-empty list of network objects."):
            NET.bulk({"networks": bad}, "network", "networks")
    with says("At most 1000 networks can be created in one request."):
        NET.bulk({"networks": [{}] * 1001}, "network", "networks")
    assert len(NET.bulk({"networks": [{}] * 1000}, "network", "networks")[0]) == 1000
    small = Fields(Dialect(body="b {key}", bulk_items="i", bulk_max="max {most} {plural}",
                           bulk_limit=2))
    with says("max 2 ports"):
        small.bulk({"ports": [{}] * 3}, "port", "ports")
    with says("b port"):
        small.bulk({}, "port", "ports")


def test_only_names_the_unknown_attributes_sorted() -> None:
    NET.only({"a": 1}, {"a", "b"}, "port")
    with says("Unrecognized attribute(s) 'y, z' for port."):
        NET.only({"a": 1, "z": 1, "y": 2}, {"a", "b"}, "port")
    with says("Invalid input for server: additional properties are not allowed (z "
              "unexpected); allowed: a, b."):
        NOV.only({"z": 1}, ["b", "a"], "server")


# ---- text ---------------------------------------------------------------------------------


def test_text_absent_or_null_is_the_default_or_required() -> None:
    assert NET.text({}, "name", default="") == ""
    assert NET.text({"name": None}, "name", default="old") == "old"
    assert NOV.text({}, "name") is None
    with says("Invalid input: 'name' is a required property."):
        NOV.text({"name": None}, "name", required=True)
    with says("'name' is a required property."):
        KEY.text({}, "name", required=True)
    with says("Invalid input for operation: 'name' is required."):
        NET.text({}, "name", required=True)


def test_text_must_be_a_string_in_each_wording() -> None:
    with says("Invalid input for name. Reason: '1' is not a valid string."):
        NET.text({"name": 1}, "name")
    with says("Invalid input for field/attribute name: [] is not a string."):
        NOV.text({"name": []}, "name")
    with says("'name' must be a string, not dict."):
        KEY.text({"name": {}}, "name")


def test_text_nul_is_refused_only_where_the_dialect_says() -> None:
    with says("Invalid input for d. Reason: NUL characters are not allowed."):
        NET.text({"d": "a\x00"}, "d")
    with says("'d' must not contain NUL characters."):
        KEY.text({"d": "a\x00"}, "d")
    assert NOV.text({"d": "a\x00"}, "d") == "a\x00"


def test_text_blank_rules() -> None:
    # network: blank is fine; compute: empty or only spaces refused; identity: empty
    # refused, spaces refused only where stripped ("name")
    assert NET.text({"d": ""}, "d") == "" and NET.text({"d": "  "}, "d") == "  "
    for value in ("", "   "):
        with says("Invalid input for field/attribute d: it must be 1 to 255 characters, "
                  "not only spaces."):
            NOV.text({"d": value}, "d")
    assert NOV.text({"d": " "}, "d", allow_empty=True) == " "
    with says("'d' must not be empty."):
        KEY.text({"d": ""}, "d")
    assert KEY.text({"d": "  "}, "d") == "  "
    with says("'name' must not be empty."):
        KEY.text({"name": "  "}, "name")
    assert KEY.text({"name": " x "}, "name") == "x"
    assert KEY.text({"name": " "}, "name", allow_empty=True) == ""


def test_text_length() -> None:
    assert NET.text({"d": "x" * 10}, "d", max_len=10) == "x" * 10
    with says(f"Invalid input for d. Reason: '{'x' * 20}...' exceeds maximum length of 10."):
        NET.text({"d": "x" * 30}, "d", max_len=10)
    with says("Invalid input for field/attribute d: it must be 1 to 3 characters, not only "
              "spaces."):
        NOV.text({"d": "abcd"}, "d", max_len=3)
    with says("'d' is longer than 3 characters."):
        KEY.text({"d": "abcd"}, "d", max_len=3)
    assert KEY.text({"name": "  abc  "}, "name", max_len=3) == "abc"  # stripped first


# ---- booleans -----------------------------------------------------------------------------


def test_boolean_words_per_dialect() -> None:
    assert NET.boolean({"b": "TRUE"}, "b", False) is True
    assert NET.boolean({"b": "False"}, "b", True) is False
    assert NET.boolean({}, "b", True) is True
    with says("Invalid input for b. Reason: ''yes'' is not a valid boolean value."):
        NET.boolean({"b": "yes"}, "b", False)
    with says("Invalid input for b. Reason: 'None' is not a valid boolean value."):
        NET.boolean({"b": None}, "b", False)
    for word in ("true", "1", "Yes", "ON"):
        assert NOV.flag(word, "b") is True
    for word in ("false", "0", "no", "Off"):
        assert NOV.flag(word, "b") is False
    with says("Invalid input for field/attribute b: 1 is not a boolean."):
        NOV.flag(1, "b")
    with says("'b' must be true or false, not 'true'."):
        KEY.boolean({"b": "true"}, "b")
    assert KEY.boolean({}, "b") is None
    with says("'b' must be true or false, not 0."):
        GLA.flag(0, "b")
    assert GLA.flag(False, "b") is False


# ---- integers -----------------------------------------------------------------------------


def test_integer_network_takes_digit_strings() -> None:
    assert NET.integer({}, "mtu", 68, 9000) is None
    assert NET.integer({"mtu": None}, "mtu", 68, 9000) is None
    assert NET.integer({"mtu": " 1500 "}, "mtu", 68, 9000) == 1500
    assert NET.integer({"q": "-1"}, "q", -1, 10) == -1
    bads: tuple[Any, ...] = ("1.5", 1.0, True, "", "x", [], "--5")
    for bad in bads:
        with says(f"Invalid input for mtu. Reason: '{bad!r}' is not an integer."):
            NET.integer({"mtu": bad}, "mtu", 68, 9000)
    with says("Invalid input for mtu. Reason: 67 is not in the range 68-9000."):
        NET.integer({"mtu": "67"}, "mtu", 68, 9000)


def test_integer_compute_takes_what_int_takes() -> None:
    assert NOV.integer({"n": "7"}, "n", 0, 10, required=True) == 7
    assert NOV.integer({"n": 7.0}, "n", 0, 10, required=True) == 7
    assert NOV.integer({"n": ""}, "n", 0, 10, default=3) == 3
    assert NOV.integer({}, "n", 0, 10, default=3) == 3
    with says("Invalid input: 'n' is a required property."):
        NOV.integer({"n": ""}, "n", 0, 10, required=True)
    bads: tuple[Any, ...] = (7.5, "7.0", True, [], float("inf"), float("nan"))
    for bad in bads:
        with says(f"Invalid input for field/attribute n: {bad!r} is not an integer."):
            NOV.integer({"n": bad}, "n", 0, 10, required=True)
    with says("Invalid input for field/attribute n: 11 must be between 0 and 10."):
        NOV.integer({"n": "11"}, "n", 0, 10)


def test_integer_image_is_strict_with_one_message() -> None:
    assert GLA.number(0, "min_ram", 0, 2**31 - 1) == 0
    for bad in ("1", 1.0, True, -1, 2**31):
        with says(f"'min_ram' must be an integer from 0 to 2147483647, not {bad!r}."):
            GLA.number(bad, "min_ram", 0, 2**31 - 1)


def test_integer_without_bounds() -> None:
    assert NET.number(-(10**12), "x") == -(10**12)
    assert NET.number(10**12, "x", lo=0) == 10**12


# ---- ids, lists, choices ------------------------------------------------------------------


def test_ident() -> None:
    assert NET.ident({}, "port_id") is None
    assert NET.ident({"port_id": "p" * 64}, "port_id") == "p" * 64
    with says("Invalid input for operation: 'port_id' is required."):
        NET.ident({"port_id": None}, "port_id", required=True)
    for bad in ("", "p" * 65, "a\x00", 5):
        with says(f"Invalid input for port_id. Reason: '{bad!r}' is not a valid ID."):
            NET.ident({"port_id": bad}, "port_id")


def test_strings() -> None:
    assert NET.strings({}, "sg") is None and NET.strings({"sg": None}, "sg") is None
    assert NET.strings({"sg": ["a", "a"]}, "sg") == ["a", "a"]
    for bad in ("a", [1], [""], ["x" * 256], ["a\x00"]):
        with says("Invalid input for sg. Reason: a list of strings is expected."):
            NET.strings({"sg": bad}, "sg")
    # identity's tags: null is not a list, NUL is let through, repeats dropped
    tags_message = "'tags' must be a list of non-empty strings of at most 255 characters."
    with says(tags_message):
        KEY.strings({"tags": None}, "tags", null=False)
    assert KEY.strings({"tags": ["b", "a\x00", "b"]}, "tags", null=False, unique=True,
                       allow_nul=True) == ["b", "a\x00"]
    with says(tags_message):
        KEY.strings({"tags": ["a\x00"]}, "tags")


def test_choice() -> None:
    assert GLA.choice("public", "visibility", ("public", "private")) == "public"
    with says("Invalid value 'all' for 'visibility'; allowed: public, private."):
        GLA.choice("all", "visibility", ("public", "private"))
    with says("interface 'x' is not one of public, internal, admin."):
        KEY.choice("x", "interface", ("public", "internal", "admin"))
    with says("Invalid value 1 for 'visibility'; allowed: public."):
        GLA.choice(1, "visibility", ["public"])


# ---- query parameters ---------------------------------------------------------------------


def test_query_one() -> None:
    assert GLA.query_one(QueryParams("a=1"), "b") is None
    assert GLA.query_one(QueryParams("a=1"), "a") == "1"
    with says("Query parameter 'a' may be given only once."):
        GLA.query_one(QueryParams("a=1&a=2"), "a")


def test_query_flag_words_per_dialect() -> None:
    assert KEY.query_flag(None, "enabled") is None
    assert KEY.query_flag("", "enabled") is True  # ?enabled means true in identity
    assert KEY.query_flag(" On ", "enabled") is True
    assert KEY.query_flag("off", "enabled") is False
    with says("Query parameter 'enabled' must be true or false, not 'x'."):
        KEY.query_flag("x", "enabled")
    assert GLA.query_flag(" YES", "protected") is True
    assert GLA.query_flag("0", "protected") is False
    for raw in ("", "on"):
        with says(f"Query parameter 'protected' must be true or false, not {raw!r}."):
            GLA.query_flag(raw, "protected")


def test_query_int() -> None:
    assert GLA.query_int(" 7 ", "size_min") == 7
    with says("Query parameter 'size_min' must be an integer, not '1.5'."):
        GLA.query_int("1.5", "size_min")
    with says("Query parameter 'size_min' must be at least 0."):
        GLA.query_int("-1", "size_min")
    assert GLA.query_int("-1", "x", minimum=-1) == -1
    with pytest.raises(LookupError):
        NET.query_int("x", "limit")
