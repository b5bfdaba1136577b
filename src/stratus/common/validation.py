"""Request-body validation, once for every API, in each API's own words.

The services read JSON bodies the same way (an object under a key, no unknown
attributes, strings, booleans, integers, ids, lists of strings) but each API
words its 400s its own way and differs in small rules: compute's booleans
accept ``"yes"``/``"on"``, network's only ``"true"``/``"false"``; compute
refuses blank text, network refuses NUL characters. A :class:`Dialect` holds
those differences as data (``str.format`` templates and a few switches) and
:class:`Fields` is the one reader, bound to a dialect::

    NEUTRON = Dialect(body="Resource body required: ... '{key}' object.", ...)
    FIELDS = Fields(NEUTRON)
    obj = FIELDS.body(req.body, "network")
    FIELDS.only(obj, NETWORK_ATTRS, "network")
    name = FIELDS.text(obj, "name", default="")

Templates are formatted with named fields; each template's docstring in
:class:`Dialect` lists the names it may use (``{value!r}`` works as in an
f-string). A template left ``None`` means the dialect has no such rule (for
``nul`` and ``blank``) or does not use that helper (the others: calling it is
a programming error and raises ``LookupError``).

JSON-schema (as Nova and Keystone use) was the alternative; it would need a
schema per body plus a translation of its errors into every current message,
so the wording-as-data reader keeps the messages identical with less code.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from stratus.common.errors import BadRequest

IntRule = Literal["strict", "digits", "int"]


@dataclass(frozen=True)
class Dialect:
    """One API's wording and small rules for request bodies.

    Templates (names each may use):

    - ``body``: the body is not an object holding a ``{key}`` object.
    - ``unknown``: attributes not allowed; ``{names}`` (sorted, ", "-joined),
      ``{kind}``, ``{allowed}`` (the allowed names, sorted, ", "-joined).
    - ``required``: ``{key}`` is missing (or null).
    - ``not_string``: ``{key}``, ``{value}``, ``{type}`` (the JSON value's Python type name).
    - ``nul``: ``{key}`` holds a NUL character; None lets NUL through.
    - ``blank``: ``{key}`` is empty, ``{max_len}``; None lets empty text through.
    - ``too_long``: ``{key}``, ``{max_len}``, ``{head}`` (the first 20 characters).
    - ``not_boolean``: ``{key}``, ``{value}``.
    - ``not_integer``: ``{key}``, ``{value}`` (as sent).
    - ``out_of_range``: ``{key}``, ``{value}`` (the number), ``{lo}``, ``{hi}``.
    - ``not_id``: ``{key}``, ``{value}``.
    - ``not_strings``: ``{key}``, ``{value}``, ``{max_len}``.
    - ``not_choice``: ``{key}``, ``{value}``, ``{allowed}`` (", "-joined, in the given order).
    - ``bulk_items``/``bulk_max``: a bulk body's list is wrong / too long;
      ``{singular}``, ``{plural}``, ``{most}``.
    - Query parameters: ``query_repeated`` (``{key}``) a parameter given more than
      once where one is read; ``query_not_boolean`` (``{key}``, ``{raw}``);
      ``query_not_integer`` (``{key}``, ``{raw}``); ``query_too_small`` (``{key}``,
      ``{raw}``, ``{minimum}``).

    Rules:

    - ``true_words``/``false_words``: strings (compared lower-cased) read as
      booleans; empty means only JSON ``true``/``false``.
    - ``int_rule``: ``"strict"`` only JSON integers; ``"digits"`` also strings
      of digits with an optional leading "-"; ``"int"`` whatever ``int()``
      takes (strings, integral floats).
    - ``blank_is_missing``: an empty string counts as an absent integer.
    - ``blank_whitespace``: text of only spaces is blank too.
    - ``strip_keys``: text attributes stripped of surrounding spaces before the checks.
    - ``copy_body``: :meth:`Fields.body` returns a copy of the object.
    - ``bulk_limit``: the most objects one bulk body may hold.
    - ``query_true``/``query_false``: a query parameter's words (compared stripped and
      lower-cased) for true and false.
    """

    body: str | None = None
    unknown: str | None = None
    required: str | None = None
    not_string: str | None = None
    nul: str | None = None
    blank: str | None = None
    too_long: str | None = None
    not_boolean: str | None = None
    not_integer: str | None = None
    out_of_range: str | None = None
    not_id: str | None = None
    not_strings: str | None = None
    not_choice: str | None = None
    bulk_items: str | None = None
    bulk_max: str | None = None
    true_words: tuple[str, ...] = ()
    false_words: tuple[str, ...] = ()
    int_rule: IntRule = "strict"
    blank_is_missing: bool = False
    blank_whitespace: bool = False
    strip_keys: frozenset[str] = frozenset()
    copy_body: bool = False
    bulk_limit: int = 1000
    query_repeated: str | None = None
    query_not_boolean: str | None = None
    query_not_integer: str | None = None
    query_too_small: str | None = None
    query_true: tuple[str, ...] = ()
    query_false: tuple[str, ...] = ()

    def error(self, name: str, **values: Any) -> BadRequest:
        """A 400 worded by the template ``name`` (LookupError if the dialect has none)."""
        template = getattr(self, name)
        if template is None:
            raise LookupError(f"this dialect has no {name!r} message")
        return BadRequest(template.format(**values))


class Fields:
    """The one reader of request bodies, worded and ruled by a :class:`Dialect`."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect

    # ---- the body --------------------------------------------------------------------

    def body(self, body: Any, key: str) -> dict[str, Any]:
        """The object under ``key`` in a request body."""
        if not isinstance(body, dict) or not isinstance(body.get(key), dict):
            raise self.dialect.error("body", key=key)
        return dict(body[key]) if self.dialect.copy_body else body[key]

    def bulk(self, body: Any, singular: str, plural: str) -> tuple[list[dict[str, Any]], bool]:
        """One object (``{"network": {...}}``) or a bulk list (``{"networks": [...]}``);
        the flag says which."""
        if isinstance(body, dict) and plural in body and singular not in body:
            items = body[plural]
            if not isinstance(items, list) or not items or not all(
                isinstance(i, dict) for i in items
            ):
                raise self.dialect.error("bulk_items", singular=singular, plural=plural,
                                         most=self.dialect.bulk_limit)
            if len(items) > self.dialect.bulk_limit:
                raise self.dialect.error("bulk_max", singular=singular, plural=plural,
                                         most=self.dialect.bulk_limit)
            return items, True
        return [self.body(body, singular)], False

    def only(self, obj: dict[str, Any], allowed: Collection[str], kind: str) -> None:
        """Refuse attributes outside ``allowed``."""
        unknown = sorted(set(obj) - set(allowed))
        if unknown:
            raise self.dialect.error("unknown", names=", ".join(unknown), kind=kind,
                                     allowed=", ".join(sorted(allowed)))

    # ---- values ----------------------------------------------------------------------

    def _absent(self, obj: dict[str, Any], key: str, required: bool) -> bool:
        if key not in obj or obj[key] is None:
            if required:
                raise self.dialect.error("required", key=key)
            return True
        return False

    def text(self, obj: dict[str, Any], key: str, *, default: Any = None,
             required: bool = False, max_len: int = 255, allow_empty: bool = False) -> Any:
        """A string attribute (``default`` when absent or null)."""
        if self._absent(obj, key, required):
            return default
        return self.string(obj[key], key, max_len=max_len, allow_empty=allow_empty)

    def string(self, value: Any, key: str, *, max_len: int = 255,
               allow_empty: bool = False) -> str:
        """Check one string value."""
        d = self.dialect
        if not isinstance(value, str):
            raise d.error("not_string", key=key, value=value, type=type(value).__name__)
        if d.nul is not None and "\x00" in value:
            raise d.error("nul", key=key, value=value)
        if key in d.strip_keys:
            value = value.strip()
        if d.blank is not None and not allow_empty and not (
            value.strip() if d.blank_whitespace else value
        ):
            raise d.error("blank", key=key, max_len=max_len)
        if len(value) > max_len:
            raise d.error("too_long", key=key, max_len=max_len, head=value[:20])
        return value

    def boolean(self, obj: dict[str, Any], key: str, default: Any = None) -> Any:
        """A boolean attribute (``default`` when absent; null is not a boolean)."""
        if key not in obj:
            return default
        return self.flag(obj[key], key)

    def flag(self, value: Any, key: str) -> bool:
        """Check one boolean value (JSON true/false, or the dialect's words)."""
        d = self.dialect
        if isinstance(value, bool):
            return value
        if isinstance(value, str):
            low = value.lower()
            if low in d.true_words:
                return True
            if low in d.false_words:
                return False
        raise d.error("not_boolean", key=key, value=value)

    def integer(self, obj: dict[str, Any], key: str, lo: int | None = None,
                hi: int | None = None, *, default: int | None = None,
                required: bool = False) -> int | None:
        """An integer attribute within ``lo``..``hi`` (``default`` when absent or null)."""
        value = obj.get(key)
        if value is None or (self.dialect.blank_is_missing and value == ""):
            if required:
                raise self.dialect.error("required", key=key)
            return default
        return self.number(value, key, lo, hi)

    def number(self, value: Any, key: str, lo: int | None = None, hi: int | None = None) -> int:
        """Check one integer value by the dialect's rule and range."""
        d = self.dialect
        number: Any = value
        if isinstance(value, bool):
            raise d.error("not_integer", key=key, value=value)
        if d.int_rule == "digits" and isinstance(value, str):
            if value.strip().lstrip("-").isdigit():
                try:
                    number = int(value)
                except ValueError:
                    raise d.error("not_integer", key=key, value=value) from None
        elif d.int_rule == "int":
            try:
                number = int(value)
            except (TypeError, ValueError, OverflowError):
                raise d.error("not_integer", key=key, value=value) from None
            if isinstance(value, float) and value != number:
                raise d.error("not_integer", key=key, value=value)
        if not isinstance(number, int):
            raise d.error("not_integer", key=key, value=value)
        if (lo is not None and number < lo) or (hi is not None and number > hi):
            raise d.error("out_of_range", key=key, value=number, lo=lo, hi=hi)
        return number

    def ident(self, obj: dict[str, Any], key: str, *, required: bool = False,
              max_len: int = 64) -> str | None:
        """An id attribute: a string of 1..``max_len`` characters without NUL."""
        if self._absent(obj, key, required):
            return None
        value = obj[key]
        if not isinstance(value, str) or not 0 < len(value) <= max_len or "\x00" in value:
            raise self.dialect.error("not_id", key=key, value=value)
        return value

    def strings(self, obj: dict[str, Any], key: str, *, max_len: int = 255,
                null: bool = True, unique: bool = False,
                allow_nul: bool | None = None) -> list[str] | None:
        """A list of non-empty strings of at most ``max_len`` characters; None when
        absent, or null and ``null`` allows it; ``unique`` drops repeats, keeping the
        first. NUL characters are refused when the dialect refuses them in text, unless
        ``allow_nul`` says otherwise."""
        if key not in obj or (null and obj[key] is None):
            return None
        value = obj[key]
        nul_ok = self.dialect.nul is None if allow_nul is None else allow_nul
        if not isinstance(value, list) or not all(
            isinstance(v, str) and 0 < len(v) <= max_len and (nul_ok or "\x00" not in v)
            for v in value
        ):
            raise self.dialect.error("not_strings", key=key, value=value, max_len=max_len)
        return list(dict.fromkeys(value)) if unique else value

    def choice(self, value: Any, key: str, allowed: Iterable[str]) -> str:
        """One of ``allowed`` (a string)."""
        options = list(allowed)
        if not isinstance(value, str) or value not in options:
            raise self.dialect.error("not_choice", key=key, value=value,
                                     allowed=", ".join(options))
        return value

    # ---- query parameters ------------------------------------------------------------

    def query_one(self, query: Any, key: str) -> str | None:
        """The one value of a query parameter (None when absent)."""
        values = query.getlist(key)
        if len(values) > 1:
            raise self.dialect.error("query_repeated", key=key)
        return values[0] if values else None

    def query_flag(self, raw: str | None, key: str) -> bool | None:
        """A query parameter read as a boolean by the dialect's words (None when absent)."""
        if raw is None:
            return None
        low = raw.strip().lower()
        if low in self.dialect.query_true:
            return True
        if low in self.dialect.query_false:
            return False
        raise self.dialect.error("query_not_boolean", key=key, raw=raw)

    def query_int(self, raw: str, key: str, minimum: int = 0) -> int:
        """A query parameter read as an integer of at least ``minimum``."""
        try:
            value = int(raw)
        except ValueError:
            raise self.dialect.error("query_not_integer", key=key, raw=raw) from None
        if value < minimum:
            raise self.dialect.error("query_too_small", key=key, raw=raw, minimum=minimum)
        return value
