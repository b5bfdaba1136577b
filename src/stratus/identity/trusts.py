"""Identity service layer: trusts (``/v3/OS-TRUST/trusts``) and the tokens scoped
to them.

A trust is a trustor's delegation of some of the roles it holds on a project to
a trustee. The trustee authenticates as itself with ``"scope": {"OS-TRUST:trust":
{"id": ...}}`` and gets a token on the trust's project carrying the trust's
roles (and the roles they imply); the token's user is the trustee, or the
trustor when the trust allows impersonation. Every validation checks the trust
again: a deleted or expired trust, a disabled trustor or trustee, or a trustor
who no longer holds one of the delegated roles ends the token. Each trust
token issued uses one of ``remaining_uses`` when the trust has a limit.
Redelegation (a trust made from a trust token) is not offered.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from stratus.common.auth import AUTH_REQUIRED
from stratus.common.errors import BadRequest, Forbidden, NotFound, Unauthorized
from stratus.common.timeutil import new_hex_id, utcnow
from stratus.identity import models as m
from stratus.identity.rows import get, stored

if TYPE_CHECKING:
    from stratus.identity.core import Identity

# A trust and the roles it delegates (what the view shows).
WithRoles = tuple[m.Trust, list[m.Role]]


def _live(trust: m.Trust | None) -> bool:
    return trust is not None and (trust.expires_at is None
                                  or trust.expires_at > utcnow(precise=True))


class Trusts:
    """Trusts over the identity database (the API layer checks who may ask)."""

    def __init__(self, core: Identity) -> None:
        self.core = core

    @staticmethod
    def _roles(s: Session, trust: m.Trust) -> list[m.Role]:
        return list(s.scalars(sa.select(m.Role).where(m.Role.id.in_(trust.roles or []))
                              .order_by(m.Role.name)))

    def create(self, trustor_id: str, trustee_id: str, project_id: str | None,
               impersonation: bool, expires: datetime | None, remaining_uses: int | None,
               role_specs: list[dict[str, Any]]) -> WithRoles:
        """A trust from ``trustor_id`` to ``trustee_id``; the trustor must hold every
        named role on the project (403 otherwise)."""
        with self.core.db.session() as s:
            get(s, m.User, trustor_id, "user")
            trustee = s.get(m.User, trustee_id)
            if trustee is None:
                raise NotFound(f"Could not find trustee user: {trustee_id}.")
            roles: list[m.Role] = []
            if project_id is not None:
                get(s, m.Project, project_id, "project")
                held = {r.id: r for r in self.core.effective_roles(
                    s, trustor_id, project_id, "Project")}
            elif role_specs:
                raise BadRequest("A trust that delegates roles needs a project_id.")
            else:
                held = {}
            for spec in role_specs:
                if spec.get("id"):
                    role = s.get(m.Role, str(spec["id"]))
                else:
                    role = s.scalar(sa.select(m.Role).where(m.Role.name == str(spec["name"])))
                if role is None:
                    raise NotFound(f"Could not find role: {spec.get('id') or spec.get('name')}.")
                if role.id not in held:
                    raise Forbidden(f"The trustor does not hold role {role.name!r} on project "
                                    f"{project_id}, so a trust cannot delegate it.")
                if role not in roles:
                    roles.append(role)
            trust = m.Trust(id=new_hex_id(), trustor_user_id=trustor_id,
                            trustee_user_id=trustee.id, project_id=project_id,
                            impersonation=impersonation, expires_at=expires,
                            remaining_uses=remaining_uses, roles=[r.id for r in roles], extra={})
            with stored(s, "trust"):
                s.add(trust)
            return trust, sorted(roles, key=lambda r: r.name)

    def find(self, trustor_id: str | None, trustee_id: str | None) -> list[WithRoles]:
        """Live trusts, by trustor and/or trustee when given."""
        q = sa.select(m.Trust).order_by(m.Trust.id)
        if trustor_id is not None:
            q = q.where(m.Trust.trustor_user_id == trustor_id)
        if trustee_id is not None:
            q = q.where(m.Trust.trustee_user_id == trustee_id)
        with self.core.db.session() as s:
            return [(t, self._roles(s, t)) for t in s.scalars(q) if _live(t)]

    def show(self, trust_id: str) -> WithRoles:
        """A live trust; 404 when it does not exist or has expired."""
        with self.core.db.session() as s:
            trust = s.get(m.Trust, trust_id)
            if not _live(trust):
                raise NotFound(f"Could not find trust: {trust_id}.")
            assert trust is not None
            return trust, self._roles(s, trust)

    def delete(self, trust_id: str) -> None:
        """Delete a trust; its tokens fail their next validation (it is checked each time)."""
        with self.core.db.session() as s:
            s.delete(get(s, m.Trust, trust_id, "trust"))

    # ---- trust-scoped tokens ----------------------------------------------------------

    def consume(self, s: Session, spec: Any, trustee: m.User) -> m.Trust:
        """The trust a token is being scoped to, by its trustee: 401 when it is not
        theirs, gone, expired or used up; one use is taken when it counts uses."""
        if not isinstance(spec, dict) or not isinstance(spec.get("id"), str):
            raise BadRequest("scope.OS-TRUST:trust must be {'id': '<trust id>'}.")
        trust = s.get(m.Trust, spec["id"], with_for_update=True)
        if not _live(trust) or trust is None:
            raise Unauthorized(AUTH_REQUIRED)
        if trust.trustee_user_id != trustee.id:
            raise Forbidden("The user authenticating is not the trust's trustee.")
        if trust.remaining_uses is not None:
            if trust.remaining_uses <= 0:
                raise Unauthorized(AUTH_REQUIRED)
            trust.remaining_uses -= 1
        return trust

    def token_roles(self, s: Session, trust_id: str, user_id: str) -> tuple[m.Trust, list[m.Role]]:
        """For a token scoped to ``trust_id`` whose user is ``user_id``: the trust and
        the roles the token carries; 404 when the trust no longer grants them."""
        trust = s.get(m.Trust, trust_id)
        if trust is None or not _live(trust):
            raise NotFound("The token's trust was deleted or has expired.")
        if user_id not in (trust.trustor_user_id, trust.trustee_user_id):
            raise NotFound("The token's user is not part of its trust.")
        for uid in (trust.trustor_user_id, trust.trustee_user_id):
            user = s.get(m.User, uid)
            if user is None or not user.enabled:
                raise NotFound("The trust's trustor or trustee is disabled.")
        if trust.project_id is None:
            return trust, []
        held = {r.id for r in self.core.effective_roles(
            s, trust.trustor_user_id, trust.project_id, "Project")}
        if not set(trust.roles or []) <= held:
            raise NotFound("The trustor no longer holds the roles the trust delegates.")
        ids = self.core.expand_implied(s, trust.roles or []) & held
        return trust, list(s.scalars(sa.select(m.Role).where(m.Role.id.in_(ids))))
