"""Identity service layer: projects (list, create under a domain or a parent
project, read, update, delete)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from stratus.common.errors import BadRequest, Conflict, Forbidden, NotFound
from stratus.common.timeutil import new_hex_id
from stratus.identity import models as m
from stratus.identity import views
from stratus.identity.rows import get, require_domain, stored

MAX_TAGS = 80  # Keystone's limit on a project's tags

if TYPE_CHECKING:
    from stratus.identity.core import Identity


class Projects:
    """Projects over the identity database."""

    def __init__(self, core: Identity) -> None:
        self.core = core

    def find(self, filters: dict[str, str], enabled: bool | None) -> list[m.Project]:
        """Projects by name, filtered on name, domain_id, parent_id (exact) and enabled."""
        q = sa.select(m.Project).order_by(m.Project.name)
        for key, col in (
            ("name", m.Project.name),
            ("domain_id", m.Project.domain_id),
            ("parent_id", m.Project.parent_id),
        ):
            if key in filters:
                q = q.where(col == filters[key])
        if enabled is not None:
            q = q.where(m.Project.enabled.is_(enabled))
        with self.core.db.session() as s:
            return list(s.scalars(q))

    def show(self, project_id: str) -> m.Project:
        with self.core.db.session() as s:
            proj: m.Project = get(s, m.Project, project_id, "project")
            return proj

    def create(
        self,
        name: str | None,
        parent_id: str | None,
        domain_id: str | None,
        fallback_domain: str,
        obj: dict[str, Any],
    ) -> m.Project:
        """A new project. Its domain is ``domain_id``, else its parent's (a project's
        domain, or the parent when that is a domain), else ``fallback_domain``."""
        with self.core.db.session() as s:
            parent = None
            if parent_id is not None:
                parent = s.get(m.Project, parent_id)
                if parent is None and s.get(m.Domain, parent_id) is None:
                    raise BadRequest(f"parent_id {parent_id!r} is neither a project nor a domain.")
            if parent is not None and domain_id and domain_id != parent.domain_id:
                raise BadRequest("A project must be in the same domain as its parent.")
            domain_id = domain_id or (parent.domain_id if parent else parent_id) or fallback_domain
            require_domain(s, domain_id)
            if (
                s.scalar(
                    sa.select(m.Project).where(
                        m.Project.domain_id == domain_id, m.Project.name == name
                    )
                )
                is not None
            ):
                raise Conflict(
                    f"Conflict occurred attempting to store project - a project "
                    f"named {name!r} already exists in domain {domain_id!r}."
                )
            proj = m.Project(
                id=new_hex_id(),
                name=name,
                domain_id=domain_id,
                parent_id=parent.id if parent else None,
                description=views.text(
                    obj, "description", allow_empty=True, max_len=65535, default=""
                )
                or "",
                enabled=views.boolean(obj, "enabled", True),
                tags=views.tags(obj) or [],
                extra=views.extras(obj),
            )
            with stored(s, f"project {name!r}"):
                s.add(proj)
            return proj

    def update(self, project_id: str, obj: dict[str, Any]) -> m.Project:
        """Change a project; disabling it revokes the tokens scoped to it."""
        with self.core.db.session() as s:
            proj: m.Project = get(s, m.Project, project_id, "project")
            if "name" in obj:
                proj.name = views.text(obj, "name", required=True, max_len=64) or proj.name
            if "description" in obj:
                proj.description = (
                    views.text(obj, "description", allow_empty=True, max_len=65535, default="")
                    or ""
                )
            new_tags = views.tags(obj)
            if new_tags is not None:
                proj.tags = new_tags
            enabled = views.boolean(obj, "enabled")
            if enabled is False and proj.enabled:
                self.core.revoke(s, project_id=proj.id)
            if enabled is not None:
                proj.enabled = enabled
            proj.extra = {**(proj.extra or {}), **views.extras(obj)}
            with stored(s, f"project {proj.name!r}"):
                pass
            return proj

    def delete(self, project_id: str) -> None:
        """Delete a project without children, its grants and application
        credentials; revoke the tokens scoped to it."""
        with self.core.db.session() as s:
            proj = get(s, m.Project, project_id, "project")
            if s.scalar(sa.select(m.Project.id).where(m.Project.parent_id == proj.id).limit(1)):
                raise Forbidden(
                    "Cannot delete a project that has child projects; delete them first."
                )
            s.execute(sa.delete(m.Assignment).where(m.Assignment.target_id == proj.id))
            s.execute(
                sa.delete(m.ApplicationCredential).where(
                    m.ApplicationCredential.project_id == proj.id
                )
            )
            self.core.revoke(s, project_id=proj.id)
            s.delete(proj)

    # ---- tags (/v3/projects/{id}/tags) ----------------------------------------------------

    def tags(self, project_id: str) -> list[str]:
        with self.core.db.session() as s:
            proj: m.Project = get(s, m.Project, project_id, "project")
            return list(proj.tags or [])

    def change_tags(self, project_id: str, add: list[str] | None = None,
                    remove: str | None = None, replace: list[str] | None = None) -> list[str]:
        """Replace the tags, add some, or remove one (404 when it is not there);
        the tags afterwards. At most MAX_TAGS, as Keystone allows."""
        with self.core.db.session() as s:
            proj: m.Project = get(s, m.Project, project_id, "project")
            tags = list(proj.tags or []) if replace is None else []
            for tag in [*(replace or []), *(add or [])]:
                if tag not in tags:
                    tags.append(tag)
            if remove is not None:
                if remove not in tags:
                    raise NotFound(f"Tag {remove!r} not found for project {proj.id}.")
                tags.remove(remove)
            if len(tags) > MAX_TAGS:
                raise BadRequest(f"A project has at most {MAX_TAGS} tags.")
            proj.tags = tags
            return tags
