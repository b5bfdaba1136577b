"""A deterministic corpus of malformed requests for every route of a service.

For each route: path parameters replaced by odd values, and for routes that
take a body, every field set to every odd value. The tests send the corpus
and require that no answer is a 5xx.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from starlette.routing import BaseRoute, Route

ODD_VALUES: list[Any] = [None, 7, True, [], {}, "", "\x00", "x" * 70000]
ODD_PATH = ["x", "%00", "a" * 300, "..", "%ff%fe"]
FIELDS = ["id", "name", "domain_id", "domain", "enabled", "password", "original_password",
          "description", "parent_id", "tags", "default_project_id", "type", "interface", "url",
          "service_id", "region_id", "parent_region_id", "secret", "roles", "expires_at",
          "unrestricted", "is_domain", "identity", "scope", "methods", "user", "project"]
ENTITY = {"tokens": "auth", "password": "user", "application_credentials":
          "application_credential"}


def entity_key(path: str) -> str:
    parts = [p for p in path.split("/") if p and not p.startswith("{")]
    last = parts[-1] if parts else ""
    return ENTITY.get(last, last[:-1] if last.endswith("s") else last)


def requests_for(routes: list[BaseRoute]) -> Iterator[tuple[str, str, Any]]:
    for route in routes:
        if not isinstance(route, Route) or not route.methods:
            continue
        for method in sorted(route.methods - {"HEAD"}) or ["HEAD"]:
            params = re.findall(r"{(\w+)}", route.path)
            for odd in ODD_PATH:
                path = route.path
                for p in params:
                    path = path.replace("{" + p + "}", odd)
                if not params and odd != "x":
                    continue
                if method in ("POST", "PATCH"):
                    key = entity_key(route.path)
                    yield method, path, {key: {"name": "fuzz"}}
                    if odd != "x":
                        continue
                    for value in ODD_VALUES:
                        yield method, path, value
                        yield method, path, {key: value}
                        for field in FIELDS:
                            yield method, path, {key: {field: value}}
                else:
                    yield method, path, None
