"""The error of every contract, and the field checks of the compute and instance ones.

Each ``from_dict`` reads a JSON-shaped mapping through these helpers; a value
of the wrong type raises :class:`ContractError` naming the field by its path
(``ports[0].mac_address``), so a producer's mistake is found at the boundary.
Standard library only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class ContractError(ValueError):
    """A document does not have the shape of its contract: the one error of every
    contract (``stratus.contracts.network`` calls it ``ModelError`` too).

    ``ContractError(field, message)``: ``field`` is the path of the bad field, and the
    text reads ``"<field>: <message>"``; ``ContractError(message)``: about the document
    itself (``field`` is ``""``), the text is the message. ``reason`` is the message."""

    def __init__(self, field: str, message: str | None = None) -> None:
        if message is None:
            field, message = "", field
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.reason = message


def path(parent: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{parent}[{key}]"
    return f"{parent}.{key}" if parent else key


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ContractError(where, f"expected an object, got {_kind(value)}")
    return value


def seq(value: Any, where: str) -> list[Any]:
    """A list; null (or absent) is the empty list."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise ContractError(where, f"expected a list, got {_kind(value)}")
    return value


def text(data: Mapping[str, Any], key: str, where: str, default: str = "") -> str:
    value = data.get(key)
    if value is None:
        return default
    if not isinstance(value, str):
        raise ContractError(path(where, key), f"expected a string, got {_kind(value)}")
    return value


def opt_text(data: Mapping[str, Any], key: str, where: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise ContractError(path(where, key), f"expected a string or null, got {_kind(value)}")
    return value


def required_text(data: Mapping[str, Any], key: str, where: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise ContractError(path(where, key), "a non-empty string is required, got "
                            f"{_kind(value) if value != '' else 'an empty string'}")
    return value


def integer(data: Mapping[str, Any], key: str, where: str, default: int = 0) -> int:
    value = data.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise ContractError(path(where, key), f"expected an integer, got {_kind(value)}")
    return value


def opt_integer(data: Mapping[str, Any], key: str, where: str) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ContractError(path(where, key), f"expected an integer or null, got {_kind(value)}")
    return value


def boolean(data: Mapping[str, Any], key: str, where: str, default: bool = False) -> bool:
    value = data.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ContractError(path(where, key), f"expected true or false, got {_kind(value)}")
    return value


def texts(data: Mapping[str, Any], key: str, where: str) -> list[str]:
    out = seq(data.get(key), path(where, key))
    for i, item in enumerate(out):
        if not isinstance(item, str):
            raise ContractError(path(path(where, key), i), f"expected a string, got {_kind(item)}")
    return list(out)


def obj(data: Mapping[str, Any], key: str, where: str) -> dict[str, Any]:
    """A free-form object (null or absent is ``{}``)."""
    value = data.get(key)
    if value is None:
        return {}
    return dict(mapping(value, path(where, key)))
