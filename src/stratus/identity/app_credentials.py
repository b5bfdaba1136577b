"""Identity service layer: application credentials (a user's delegation of
some of its roles on one project to a secret)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from stratus.common.errors import BadRequest, Conflict, Forbidden, NotFound
from stratus.common.timeutil import new_hex_id
from stratus.identity import models as m
from stratus.identity import views
from stratus.identity.passwords import hash_password
from stratus.identity.rows import stored

if TYPE_CHECKING:
    from stratus.identity.core import Identity

# A credential and the roles it grants (what the view shows).
WithRoles = tuple[m.ApplicationCredential, list[m.Role]]


class AppCredentials:
    """Application credentials over the identity database."""

    def __init__(self, core: Identity) -> None:
        self.core = core

    def create(
        self,
        user_id: str,
        project_id: str,
        name: str | None,
        secret: str,
        expires: datetime | None,
        obj: dict[str, Any],
    ) -> WithRoles:
        """A credential for the user on the project, delegating the roles ``obj``
        names (all the roles the user holds there when it names none)."""
        with self.core.db.session() as s:
            held = self.core.effective_roles(s, user_id, project_id, "Project")
            wanted = obj.get("roles")
            if wanted is None:
                roles = held
            else:
                if not isinstance(wanted, list):
                    raise BadRequest("'roles' must be a list of {'id'} or {'name'} objects.")
                roles = []
                for spec in wanted:
                    match = [
                        r
                        for r in held
                        if isinstance(spec, dict)
                        and (r.id == spec.get("id") or r.name == spec.get("name"))
                    ]
                    if not match:
                        raise Forbidden(
                            f"You do not hold role {spec!r} on this project, so "
                            "an application credential cannot delegate it."
                        )
                    roles.extend(match)
            if (
                s.scalar(
                    sa.select(m.ApplicationCredential).where(
                        m.ApplicationCredential.user_id == user_id,
                        m.ApplicationCredential.name == name,
                    )
                )
                is not None
            ):
                raise Conflict(f"An application credential named {name!r} already exists.")
            cred = m.ApplicationCredential(
                id=new_hex_id(),
                name=name,
                user_id=user_id,
                project_id=project_id,
                description=views.text(obj, "description", allow_empty=True, max_len=65535),
                secret_hash=hash_password(secret, self.core.hash_algorithm),
                expires_at=expires,
                unrestricted=bool(obj.get("unrestricted", False)),
                roles=[r.id for r in roles],
            )
            with stored(s, f"application credential {name!r}"):
                s.add(cred)
            return cred, roles

    @staticmethod
    def _roles(s: Session, cred: m.ApplicationCredential) -> list[m.Role]:
        return list(s.scalars(sa.select(m.Role).where(m.Role.id.in_(cred.roles or []))).all())

    def find(self, user_id: str, name: str | None) -> list[WithRoles]:
        """The user's credentials (those named ``name`` when it is given)."""
        with self.core.db.session() as s:
            q = sa.select(m.ApplicationCredential).where(
                m.ApplicationCredential.user_id == user_id
            )
            if name is not None:
                q = q.where(m.ApplicationCredential.name == name)
            return [(c, self._roles(s, c)) for c in s.scalars(q)]

    @staticmethod
    def _one(s: Session, user_id: str, cred_id: str) -> m.ApplicationCredential:
        cred = s.get(m.ApplicationCredential, cred_id)
        if cred is None or cred.user_id != user_id:
            raise NotFound(f"Could not find application credential: {cred_id}.")
        return cred

    def show(self, user_id: str, cred_id: str) -> WithRoles:
        with self.core.db.session() as s:
            cred = self._one(s, user_id, cred_id)
            return cred, self._roles(s, cred)

    def delete(self, user_id: str, cred_id: str) -> None:
        """Delete a credential and revoke the tokens made from it."""
        with self.core.db.session() as s:
            cred = self._one(s, user_id, cred_id)
            self.core.revoke(s, app_cred_id=cred.id)
            s.delete(cred)
