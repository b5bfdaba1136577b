"""Identity service layer: groups and their members."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from stratus.common.errors import Conflict, NotFound
from stratus.common.timeutil import new_hex_id
from stratus.identity import models as m
from stratus.identity import views
from stratus.identity.rows import get, require_domain, stored

if TYPE_CHECKING:
    from stratus.identity.core import Identity


class Groups:
    """Groups over the identity database."""

    def __init__(self, core: Identity) -> None:
        self.core = core

    def find(self, filters: dict[str, str]) -> list[m.Group]:
        """Groups by name, filtered on name and domain_id (exact)."""
        q = sa.select(m.Group).order_by(m.Group.name)
        for key, col in (("name", m.Group.name), ("domain_id", m.Group.domain_id)):
            if key in filters:
                q = q.where(col == filters[key])
        with self.core.db.session() as s:
            return list(s.scalars(q))

    def show(self, group_id: str) -> m.Group:
        with self.core.db.session() as s:
            grp: m.Group = get(s, m.Group, group_id, "group")
            return grp

    def create(self, name: str | None, domain_id: str, obj: dict[str, Any]) -> m.Group:
        with self.core.db.session() as s:
            require_domain(s, domain_id)
            if (
                s.scalar(
                    sa.select(m.Group).where(m.Group.domain_id == domain_id, m.Group.name == name)
                )
                is not None
            ):
                raise Conflict(
                    f"Conflict occurred attempting to store group - a group named "
                    f"{name!r} already exists in domain {domain_id!r}."
                )
            grp = m.Group(
                id=new_hex_id(),
                name=name,
                domain_id=domain_id,
                description=views.text(
                    obj, "description", allow_empty=True, max_len=65535, default=""
                )
                or "",
            )
            with stored(s, f"group {name!r}"):
                s.add(grp)
            return grp

    def update(self, group_id: str, obj: dict[str, Any]) -> m.Group:
        with self.core.db.session() as s:
            grp: m.Group = get(s, m.Group, group_id, "group")
            if "name" in obj:
                grp.name = views.text(obj, "name", required=True, max_len=64) or grp.name
            if "description" in obj:
                grp.description = (
                    views.text(obj, "description", allow_empty=True, max_len=65535, default="")
                    or ""
                )
            with stored(s, f"group {grp.name!r}"):
                pass
            return grp

    def delete(self, group_id: str) -> None:
        """Delete a group with its grants and memberships; revoke the tokens its
        grants gave its members."""
        with self.core.db.session() as s:
            grp = get(s, m.Group, group_id, "group")
            for row in self._grants(s, grp.id):
                self.core.revoke_grant(s, "Group", grp.id, row.type.removeprefix("Group"),
                                       row.target_id)
            s.execute(sa.delete(m.Assignment).where(m.Assignment.actor_id == grp.id))
            s.execute(sa.delete(m.Membership).where(m.Membership.group_id == grp.id))
            s.delete(grp)

    def users(self, group_id: str) -> list[m.User]:
        """The group's members."""
        with self.core.db.session() as s:
            get(s, m.Group, group_id, "group")
            return list(
                s.scalars(
                    sa.select(m.User)
                    .join(m.Membership, m.Membership.user_id == m.User.id)
                    .where(m.Membership.group_id == group_id)
                ).all()
            )

    @staticmethod
    def _pair(s: Session, group_id: str, user_id: str) -> tuple[m.Group, m.User]:
        return get(s, m.Group, group_id, "group"), get(s, m.User, user_id, "user")

    def add_member(self, group_id: str, user_id: str) -> None:
        """Make the user a member (nothing changes when it already is one)."""
        with self.core.db.session() as s:
            grp, user = self._pair(s, group_id, user_id)
            if s.get(m.Membership, (user.id, grp.id)) is None:
                with stored(s, "group membership"):
                    s.add(m.Membership(user_id=user.id, group_id=grp.id))

    def check_member(self, group_id: str, user_id: str) -> None:
        """404 unless the user is a member of the group."""
        with self.core.db.session() as s:
            grp, user = self._pair(s, group_id, user_id)
            if s.get(m.Membership, (user.id, grp.id)) is None:
                raise NotFound(f"User {user.id} is not a member of group {grp.id}.")

    @staticmethod
    def _grants(s: Session, group_id: str) -> list[m.Assignment]:
        return list(s.scalars(sa.select(m.Assignment).where(
            m.Assignment.type.in_(("GroupProject", "GroupDomain", "GroupSystem")),
            m.Assignment.actor_id == group_id)))

    def remove_member(self, group_id: str, user_id: str) -> None:
        """Remove a member; revoke the tokens the group's grants gave the user."""
        with self.core.db.session() as s:
            grp, user = self._pair(s, group_id, user_id)
            row = s.get(m.Membership, (user.id, grp.id))
            if row is None:
                raise NotFound(f"User {user.id} is not a member of group {grp.id}.")
            for grant in self._grants(s, grp.id):
                self.core.revoke_grant(s, "User", user.id, grant.type.removeprefix("Group"),
                                       grant.target_id)
            s.delete(row)
