"""Identity service layer: users (list, create, read, update, delete, change
password) and what a user belongs to (projects, groups)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from stratus.common.errors import BadRequest, Conflict, Unauthorized
from stratus.common.timeutil import new_hex_id, utcnow
from stratus.identity import models as m
from stratus.identity import views
from stratus.identity.assignments import projects_of_user
from stratus.identity.passwords import verify_password
from stratus.identity.rows import get, stored

if TYPE_CHECKING:
    from stratus.identity.core import Identity


class Users:
    """Users over the identity database."""

    def __init__(self, core: Identity) -> None:
        self.core = core

    def find(self, filters: dict[str, str], enabled: bool | None) -> list[m.User]:
        """Users by name, filtered on name, domain_id (exact) and enabled."""
        q = sa.select(m.User).order_by(m.User.name)
        for key, col in (("name", m.User.name), ("domain_id", m.User.domain_id)):
            if key in filters:
                q = q.where(col == filters[key])
        if enabled is not None:
            q = q.where(m.User.enabled.is_(enabled))
        with self.core.db.session() as s:
            return list(s.scalars(q))

    def show(self, user_id: str) -> m.User:
        with self.core.db.session() as s:
            user: m.User = get(s, m.User, user_id, "user")
            return user

    def create(
        self, name: str | None, password: str | None, domain_id: str, obj: dict[str, Any]
    ) -> m.User:
        """A new user in an existing domain; the rest of ``obj`` is checked once the
        domain and the default project are known to exist and the name to be free."""
        with self.core.db.session() as s:
            # A missing domain is a 404 for a user, as Keystone answers (Tempest checks it).
            get(s, m.Domain, domain_id, "domain")
            default_project_id = views.text(obj, "default_project_id", max_len=64)
            if default_project_id and s.get(m.Project, default_project_id) is None:
                raise BadRequest(
                    f"default_project_id {default_project_id!r} does not refer "
                    "to an existing project."
                )
            if (
                s.scalar(
                    sa.select(m.User).where(m.User.domain_id == domain_id, m.User.name == name)
                )
                is not None
            ):
                raise Conflict(
                    f"Conflict occurred attempting to store user - Duplicate entry "
                    f"found with name {name} at domain ID {domain_id}."
                )
            user = m.User(
                id=new_hex_id(),
                name=name,
                domain_id=domain_id,
                default_project_id=default_project_id,
                description=views.text(obj, "description", allow_empty=True, max_len=65535),
                enabled=views.boolean(obj, "enabled", True),
                extra=_with_options(views.extras(obj), views.user_options(obj, {})),
                created_at=utcnow(precise=True),
            )
            if password is not None:
                self.core.set_password(s, user, password)
            with stored(
                s, f"user - Duplicate entry found with name {name} at domain ID {domain_id}"
            ):
                s.add(user)
            return user

    def update(self, user_id: str, obj: dict[str, Any], password: str | None) -> m.User:
        """Change a user; disabling it or setting its password revokes its tokens."""
        with self.core.db.session() as s:
            user: m.User = get(s, m.User, user_id, "user")
            if "name" in obj:
                user.name = views.text(obj, "name", required=True) or user.name
            if "description" in obj:
                user.description = views.text(obj, "description", allow_empty=True, max_len=65535)
            if "default_project_id" in obj:
                dpid = views.text(obj, "default_project_id", max_len=64)
                if dpid and s.get(m.Project, dpid) is None:
                    raise BadRequest(
                        f"default_project_id {dpid!r} does not refer to an existing project."
                    )
                user.default_project_id = dpid
            enabled = views.boolean(obj, "enabled")
            if (enabled is False and user.enabled) or password is not None:
                self.core.revoke(s, user_id=user.id)
            if enabled is not None:
                user.enabled = enabled
            if enabled is True:
                self.core.security.clear(user)  # an admin's unlock, as in Keystone
            if password is not None:
                self.core.set_password(s, user, password)
            current = (user.extra or {}).get("options") or {}
            user.extra = _with_options(
                {**(user.extra or {}), **views.extras(obj)}, views.user_options(obj, current))
            with stored(
                s,
                f"user - Duplicate entry found with name {user.name} at domain ID {user.domain_id}",
            ):
                pass
            return user

    def delete(self, user_id: str) -> None:
        """Delete a user with its grants, memberships, application credentials,
        credentials and trusts (as trustor or trustee); revoke its tokens."""
        with self.core.db.session() as s:
            user = get(s, m.User, user_id, "user")
            s.execute(sa.delete(m.Assignment).where(m.Assignment.actor_id == user.id))
            s.execute(sa.delete(m.Membership).where(m.Membership.user_id == user.id))
            s.execute(
                sa.delete(m.ApplicationCredential).where(m.ApplicationCredential.user_id == user.id)
            )
            s.execute(sa.delete(m.Credential).where(m.Credential.user_id == user.id))
            s.execute(sa.delete(m.Trust).where(sa.or_(m.Trust.trustor_user_id == user.id,
                                                      m.Trust.trustee_user_id == user.id)))
            self.core.revoke(s, user_id=user.id)
            s.delete(user)

    def change_password(self, user_id: str, original: str, new: str) -> None:
        """A user's own password change: 401 unless ``original`` is its current
        password; the user's tokens are revoked."""
        with self.core.db.session() as s:
            user = s.get(m.User, user_id)
            if user is None or not verify_password(original, user.password_hash):
                raise Unauthorized("The request you have made requires authentication.")
            self.core.set_password(s, user, new)
            self.core.revoke(s, user_id=user.id)

    def projects(self, user_id: str) -> list[m.Project]:
        """The projects the user holds a role on, directly or through a group."""
        with self.core.db.session() as s:
            get(s, m.User, user_id, "user")
            return projects_of_user(self.core, s, user_id)

    def groups(self, user_id: str) -> list[m.Group]:
        """The groups the user is a member of."""
        with self.core.db.session() as s:
            get(s, m.User, user_id, "user")
            return list(
                s.scalars(
                    sa.select(m.Group)
                    .join(m.Membership, m.Membership.group_id == m.Group.id)
                    .where(m.Membership.user_id == user_id)
                ).all()
            )


def _with_options(extra: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    """The user's ``extra`` with its options under ``options`` (none: no key)."""
    out = {k: v for k, v in extra.items() if k != "options"}
    if options:
        out["options"] = options
    return out
