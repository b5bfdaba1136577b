"""Row helpers every identity service module shares: fetch-or-404, the
"must be an existing domain" check, and turning a unique-constraint race
into a clear 409."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from stratus.common.errors import BadRequest, Conflict, NotFound
from stratus.identity import models as m

# The domain_id Keystone stores for a global (not domain-specific) role.
GLOBAL = "<<null>>"


def get(session: Session, model: type[Any], obj_id: str, kind: str) -> Any:
    """The row with this primary key, or a 404 naming the kind and the id."""
    obj = session.get(model, obj_id) if obj_id else None
    if obj is None:
        raise NotFound(f"Could not find {kind}: {obj_id}.")
    return obj


@contextmanager
def stored(session: Session, what: str) -> Iterator[None]:
    """Flush inside; a unique-constraint race becomes a clear 409."""
    try:
        yield
        session.flush()
    except sa.exc.IntegrityError:
        session.rollback()
        raise Conflict(f"Conflict occurred attempting to store {what}.") from None


def require_domain(session: Session, domain_id: str) -> m.Domain:
    """The domain a new user, group, project or role goes into; 400 if it does not exist."""
    dom = session.get(m.Domain, domain_id)
    if dom is None:
        raise BadRequest(f"domain_id {domain_id!r} does not refer to an existing domain.")
    return dom
