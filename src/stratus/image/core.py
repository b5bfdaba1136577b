"""Image domain logic: who may see and change an image, and the changes themselves.

The HTTP layer (the modules of api/) parses requests and formats responses; everything
that decides something lives here (and in listing.py and transfer.py), takes
the caller's AuthContext, and raises ApiErrors, so unit tests drive it
without HTTP.

Visibility follows Glance: ``public`` and ``community`` images are visible to
every project; ``shared`` ones to their owner and their members; ``private``
ones only to their owner. An image the caller may not see answers 404, never
403, so nobody learns that it exists. Changing an image needs the ``member``
role on its owner project (or ``admin``); publicizing, deactivating and
reactivating need ``admin``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from stratus.common import policy
from stratus.common.auth import AuthContext, require_project_scope
from stratus.common.db import Database
from stratus.common.errors import BadRequest, Conflict, Forbidden, NotFound, PayloadTooLarge
from stratus.common.timeutil import new_id, utcnow
from stratus.image import models as m
from stratus.image import views
from stratus.image.inspect import Limits
from stratus.image.store import BlobStore
from stratus.image.views import PATCH_MEDIA_TYPE

MAX_MEMBERS = 128


@dataclass
class Settings:
    """The [image] settings the service's behaviour depends on."""

    max_image_size: int = 1024**4
    quota_images_per_project: int = 1000
    quota_bytes_per_project: int = 0
    disk_formats: list[str] = field(default_factory=lambda: list(views.ALL_DISK_FORMATS))
    container_formats: list[str] = field(
        default_factory=lambda: list(views.ALL_CONTAINER_FORMATS)
    )
    limits: Limits = field(default_factory=Limits)

    @property
    def formats(self) -> dict[str, list[str]]:
        return {"disk_format": self.disk_formats, "container_format": self.container_formats}


def not_found(image_id: str) -> NotFound:
    return NotFound(f"No image found with ID {image_id}.")


class ImageService:
    """The image service's behaviour over its database and file store."""

    def __init__(self, db: Database, store: BlobStore, settings: Settings | None = None) -> None:
        self.db = db
        self.store = store
        self.settings = settings or Settings()

    # ---- access --------------------------------------------------------------------------

    @staticmethod
    def is_member(s: Session, image_id: str, project_id: str | None) -> bool:
        if project_id is None:
            return False
        return s.get(m.ImageMember, (image_id, project_id)) is not None

    def can_see(self, s: Session, ctx: AuthContext, img: m.Image) -> bool:
        if ctx.is_admin or img.visibility in ("public", "community"):
            return True
        if ctx.project_id is not None and img.owner == ctx.project_id:
            return True
        return img.visibility == "shared" and self.is_member(s, img.id, ctx.project_id)

    def visible(self, s: Session, ctx: AuthContext, image_id: str) -> m.Image:
        """The image if the caller may see it, else 404."""
        img = s.get(m.Image, image_id)
        if img is None or not self.can_see(s, ctx, img):
            raise not_found(image_id)
        return img

    def writable(self, s: Session, ctx: AuthContext, image_id: str, action: str) -> m.Image:
        """The image if the caller may change it: 404 when invisible, 403 when read-only."""
        img = self.visible(s, ctx, image_id)
        if not policy.allowed(ctx, "member", img.owner):
            raise Forbidden(f"You are not authorized to {action} image {image_id}.")
        return img

    # ---- views ---------------------------------------------------------------------------

    @staticmethod
    def properties_of(s: Session, ids: list[str]) -> dict[str, dict[str, str]]:
        out: dict[str, dict[str, str]] = {i: {} for i in ids}
        if ids:
            rows = s.execute(
                sa.select(m.ImageProperty.image_id, m.ImageProperty.name, m.ImageProperty.value)
                .where(m.ImageProperty.image_id.in_(ids))
            )
            for image_id, name, value in rows:
                out[image_id][name] = value
        return out

    @staticmethod
    def tags_of(s: Session, ids: list[str]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {i: [] for i in ids}
        if ids:
            rows = s.execute(
                sa.select(m.ImageTag.image_id, m.ImageTag.value).where(m.ImageTag.image_id.in_(ids))
            )
            for image_id, value in rows:
                out[image_id].append(value)
        return out

    def view(self, s: Session, img: m.Image) -> dict[str, Any]:
        return self.views(s, [img])[0]

    def views(self, s: Session, images: Iterable[m.Image]) -> list[dict[str, Any]]:
        items = list(images)
        ids = [i.id for i in items]
        props, tags = self.properties_of(s, ids), self.tags_of(s, ids)
        return [views.image(i, props[i.id], tags[i.id]) for i in items]

    # ---- images --------------------------------------------------------------------------

    def create(self, ctx: AuthContext, body: Any) -> dict[str, Any]:
        policy.enforce(ctx, "add_image", "member", ctx.project_id)
        require_project_scope(ctx, "add_image")
        core, props = views.create_body(body, self.settings.formats)
        owner = core.pop("owner", ctx.project_id)
        if owner != ctx.project_id and not ctx.is_admin:
            raise Forbidden("Only an admin may create an image owned by another project.")
        visibility = core.get("visibility", "shared")
        if visibility == "public" and not ctx.is_admin:
            raise Forbidden("You are not authorized to publicize images (admin only).")
        tags = core.pop("tags", [])
        image_id = core.pop("id", None) or new_id()
        now = utcnow()
        with self.db.session() as s:
            if s.get(m.Image, image_id) is not None:
                raise Conflict(f"Image with identifier {image_id} already exists!")
            self._check_image_quota(s, owner)
            img = m.Image(
                id=image_id,
                name=core.get("name"),
                status="queued",
                visibility=visibility,
                owner=owner,
                protected=core.get("protected", False),
                os_hidden=core.get("os_hidden", False),
                disk_format=core.get("disk_format"),
                container_format=core.get("container_format"),
                min_disk=core.get("min_disk", 0),
                min_ram=core.get("min_ram", 0),
                created_at=now,
                updated_at=now,
            )
            s.add(img)
            s.flush()
            s.add_all(m.ImageTag(image_id=image_id, value=t) for t in tags)
            s.add_all(
                m.ImageProperty(image_id=image_id, name=k, value=v) for k, v in props.items()
            )
            s.flush()
            return self.view(s, img)

    def _check_image_quota(self, s: Session, owner: str | None) -> None:
        quota = self.settings.quota_images_per_project
        if quota <= 0 or owner is None:
            return
        count = s.scalar(sa.select(sa.func.count()).where(m.Image.owner == owner)) or 0
        if count >= quota:
            raise PayloadTooLarge(
                f"Project {owner} already owns {count} images, its quota "
                f"([image] quota_images_per_project = {quota}); delete one first."
            )

    def show(self, ctx: AuthContext, image_id: str) -> dict[str, Any]:
        with self.db.session() as s:
            return self.view(s, self.visible(s, ctx, image_id))

    def update(self, ctx: AuthContext, image_id: str, body: Any,
               media_type: str = PATCH_MEDIA_TYPE) -> dict[str, Any]:
        """Apply a JSON-patch document (``media_type``: the 2.1 or the 2.0 dialect)."""
        ops = views.patch_ops(body, media_type)
        with self.db.session() as s:
            img = self.writable(s, ctx, image_id, "modify")
            props = self.properties_of(s, [img.id])[img.id]
            tags = self.tags_of(s, [img.id])[img.id]
            new_props, new_tags = dict(props), list(tags)
            changes: dict[str, Any] = {}
            for op, attr, value in ops:
                if attr in views.SETTABLE:
                    if op == "remove":
                        raise Forbidden(f"Attribute '{attr}' cannot be removed.")
                    checked = views.core_value(attr, value, self.settings.formats)
                    self._check_core_change(ctx, img, attr, checked)
                    if attr == "tags":
                        new_tags = checked
                    else:
                        changes[attr] = checked
                    continue
                name = views.property_name(attr)
                if op in ("remove", "replace") and name not in new_props:
                    raise Conflict(f"Property {name} does not exist on image {image_id}.")
                if op == "remove":
                    del new_props[name]
                else:
                    new_props[name] = views.property_value(name, value)
            if len(new_props) > views.MAX_PROPERTIES:
                raise PayloadTooLarge(
                    f"An image may have at most {views.MAX_PROPERTIES} custom properties."
                )
            changed = False
            for attr, value in changes.items():
                if getattr(img, attr) != value:
                    setattr(img, attr, value)
                    changed = True
            if new_props != props:
                self._replace_properties(s, img.id, props, new_props)
                changed = True
            if sorted(new_tags) != sorted(tags):
                s.execute(sa.delete(m.ImageTag).where(m.ImageTag.image_id == img.id))
                s.add_all(m.ImageTag(image_id=img.id, value=t) for t in new_tags)
                changed = True
            if changed:
                img.updated_at = utcnow()
            s.flush()
            return self.view(s, img)

    def _check_core_change(self, ctx: AuthContext, img: m.Image, attr: str, value: Any) -> None:
        if attr in ("disk_format", "container_format"):
            if img.status != "queued" and getattr(img, attr) != value:
                raise Forbidden(
                    f"Attribute '{attr}' can only be changed while the image is queued "
                    f"(it is {img.status})."
                )
        elif attr == "visibility" and value == "public" and img.visibility != "public":
            if not ctx.is_admin:
                raise Forbidden("You are not authorized to publicize images (admin only).")
        elif attr == "owner" and value != img.owner and not ctx.is_admin:
            raise Forbidden("Only an admin may change the owner of an image.")

    @staticmethod
    def _replace_properties(
        s: Session, image_id: str, old: dict[str, str], new: dict[str, str]
    ) -> None:
        gone = [k for k in old if k not in new or old[k] != new[k]]
        if gone:
            s.execute(
                sa.delete(m.ImageProperty).where(
                    m.ImageProperty.image_id == image_id, m.ImageProperty.name.in_(gone)
                )
            )
        s.add_all(
            m.ImageProperty(image_id=image_id, name=k, value=v)
            for k, v in new.items()
            if k not in old or old[k] != v
        )

    def delete(self, ctx: AuthContext, image_id: str) -> None:
        with self.store.locked():
            with self.db.session() as s:
                img = self.writable(s, ctx, image_id, "delete")
                if img.protected:
                    raise Forbidden(
                        f"Image {image_id} is protected and cannot be deleted; "
                        "set protected to false first."
                    )
                key = img.store_key
                s.execute(sa.delete(m.Image).where(m.Image.id == image_id))
            if key:
                self.drop_blob_if_unused(key)

    def drop_blob_if_unused(self, key: str) -> None:
        """Remove a blob no image refers to any more (call with the store lock held)."""
        with self.db.session() as s:
            used = s.scalar(sa.select(sa.func.count()).where(m.Image.store_key == key))
        if not used:
            self.store.remove(key)

    # ---- actions and tags ----------------------------------------------------------------

    def set_active(self, ctx: AuthContext, image_id: str, active: bool) -> None:
        action = "reactivate" if active else "deactivate"
        with self.db.session() as s:
            img = self.visible(s, ctx, image_id)
            # Glance's default: admins, or members of the owning project (Tempest's
            # owner deactivates its own image); readers and other projects get a 403.
            policy.enforce(ctx, f"{action}_image", "member", img.owner)
            target, source = ("active", "deactivated") if active else ("deactivated", "active")
            if img.status == target:
                return
            if img.status != source:
                raise Forbidden(f"Not allowed to {action} image in status '{img.status}'.")
            img.status = target
            img.updated_at = utcnow()

    def add_tag(self, ctx: AuthContext, image_id: str, tag: str) -> None:
        tag = views.tag_value(tag)
        with self.db.session() as s:
            img = self.writable(s, ctx, image_id, "tag")
            tags = self.tags_of(s, [img.id])[img.id]
            if tag in tags:
                return
            if len(tags) >= views.MAX_TAGS:
                raise PayloadTooLarge(f"An image may have at most {views.MAX_TAGS} tags.")
            s.add(m.ImageTag(image_id=img.id, value=tag))
            img.updated_at = utcnow()

    def remove_tag(self, ctx: AuthContext, image_id: str, tag: str) -> None:
        with self.db.session() as s:
            img = self.writable(s, ctx, image_id, "untag")
            row = s.get(m.ImageTag, (img.id, tag))
            if row is None:
                raise NotFound(f"Tag {tag} not found on image {image_id}.")
            s.delete(row)
            img.updated_at = utcnow()

    # ---- members -------------------------------------------------------------------------

    def _shared(self, img: m.Image) -> None:
        if img.visibility != "shared":
            raise Forbidden(
                f"Only shared images have members; image {img.id} is {img.visibility}. "
                "Set its visibility to shared first."
            )

    def _owner_or_admin(self, ctx: AuthContext, img: m.Image) -> bool:
        return policy.allowed(ctx, "member", img.owner)

    def list_members(self, ctx: AuthContext, image_id: str) -> list[dict[str, Any]]:
        with self.db.session() as s:
            img = self.visible(s, ctx, image_id)
            self._shared(img)
            q = sa.select(m.ImageMember).where(m.ImageMember.image_id == img.id)
            if not self._owner_or_admin(ctx, img):
                q = q.where(m.ImageMember.member_id == ctx.project_id)
            return [views.member(r) for r in s.scalars(q.order_by(m.ImageMember.created_at))]

    def add_member(self, ctx: AuthContext, image_id: str, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("member"), str):
            raise BadRequest('The body must be {"member": "<project ID>"}.')
        member_id = body["member"]
        if not member_id or len(member_id) > 64:
            raise BadRequest("'member' must be a project ID of at most 64 characters.")
        with self.db.session() as s:
            img = self.writable(s, ctx, image_id, "share")
            self._shared(img)
            if s.get(m.ImageMember, (img.id, member_id)) is not None:
                raise Conflict(f"Member {member_id} is already associated with image {img.id}.")
            count = s.scalar(
                sa.select(sa.func.count()).where(m.ImageMember.image_id == img.id)
            )
            if (count or 0) >= MAX_MEMBERS:
                raise PayloadTooLarge(f"An image may have at most {MAX_MEMBERS} members.")
            now = utcnow()
            mem = m.ImageMember(
                image_id=img.id, member_id=member_id, status="pending", created_at=now,
                updated_at=now,
            )
            s.add(mem)
            s.flush()
            return views.member(mem)

    def _member(self, s: Session, ctx: AuthContext, image_id: str, member_id: str
                ) -> tuple[m.Image, m.ImageMember]:
        img = self.visible(s, ctx, image_id)
        self._shared(img)
        mem = s.get(m.ImageMember, (img.id, member_id))
        if mem is None or (not self._owner_or_admin(ctx, img) and ctx.project_id != member_id):
            raise NotFound(f"Member {member_id} not found on image {image_id}.")
        return img, mem

    def show_member(self, ctx: AuthContext, image_id: str, member_id: str) -> dict[str, Any]:
        with self.db.session() as s:
            return views.member(self._member(s, ctx, image_id, member_id)[1])

    def update_member(
        self, ctx: AuthContext, image_id: str, member_id: str, body: Any
    ) -> dict[str, Any]:
        if not isinstance(body, dict) or "status" not in body:
            raise BadRequest('The body must be {"status": "accepted" | "rejected" | "pending"}.')
        status = views.choice(body["status"], "status", views.MEMBER_STATUSES)
        with self.db.session() as s:
            _img, mem = self._member(s, ctx, image_id, member_id)
            if ctx.project_id != member_id and not ctx.is_admin:
                raise Forbidden("Only the member project itself may accept or reject an image.")
            if mem.status != status:
                mem.status = status
                mem.updated_at = utcnow()
            return views.member(mem)

    def delete_member(self, ctx: AuthContext, image_id: str, member_id: str) -> None:
        with self.db.session() as s:
            img, mem = self._member(s, ctx, image_id, member_id)
            if not self._owner_or_admin(ctx, img):
                raise Forbidden("Only the owner of the image may remove its members.")
            s.delete(mem)
