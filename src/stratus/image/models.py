"""Image database tables (SQLAlchemy 2). Schema changes go through migrations/.

An image row holds Glance's core attributes; custom properties, tags and
members live in their own tables so that list filters on them stay plain SQL
on both SQLite and PostgreSQL. ``store_key`` names the image's blob in the
content-addressed file store (its sha512); several images may share a blob.
``upload_owner`` identifies the process that is receiving the data of an
image in ``saving`` (host, pid and process start time), so a restarted
service can tell uploads that died with their process from live ones.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class ImageBase(DeclarativeBase):
    pass


class Image(ImageBase):
    __tablename__ = "image"
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    name: Mapped[str | None] = mapped_column(sa.String(255), nullable=True, index=True)
    status: Mapped[str] = mapped_column(sa.String(16), index=True)
    visibility: Mapped[str] = mapped_column(sa.String(16), index=True)
    owner: Mapped[str | None] = mapped_column(sa.String(64), nullable=True, index=True)
    protected: Mapped[bool] = mapped_column(default=False)
    os_hidden: Mapped[bool] = mapped_column(default=False)
    disk_format: Mapped[str | None] = mapped_column(sa.String(16), nullable=True)
    container_format: Mapped[str | None] = mapped_column(sa.String(16), nullable=True)
    min_disk: Mapped[int] = mapped_column(default=0)
    min_ram: Mapped[int] = mapped_column(default=0)
    size: Mapped[int | None] = mapped_column(sa.BigInteger, nullable=True)
    virtual_size: Mapped[int | None] = mapped_column(sa.BigInteger, nullable=True)
    checksum: Mapped[str | None] = mapped_column(sa.String(32), nullable=True)
    os_hash_algo: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    os_hash_value: Mapped[str | None] = mapped_column(sa.String(128), nullable=True)
    store_key: Mapped[str | None] = mapped_column(sa.String(128), nullable=True, index=True)
    upload_owner: Mapped[str | None] = mapped_column(sa.String(255), nullable=True)
    created_at: Mapped[datetime] = mapped_column(index=True)
    updated_at: Mapped[datetime] = mapped_column()


class ImageProperty(ImageBase):
    """A custom (user-defined) property: a string value under a name."""

    __tablename__ = "image_property"
    image_id: Mapped[str] = mapped_column(
        sa.ForeignKey("image.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    value: Mapped[str] = mapped_column(sa.Text)


class ImageTag(ImageBase):
    __tablename__ = "image_tag"
    image_id: Mapped[str] = mapped_column(
        sa.ForeignKey("image.id", ondelete="CASCADE"), primary_key=True
    )
    value: Mapped[str] = mapped_column(sa.String(255), primary_key=True, index=True)


class ImageMember(ImageBase):
    """A project a ``shared`` image is shared with, and whether it accepted."""

    __tablename__ = "image_member"
    image_id: Mapped[str] = mapped_column(
        sa.ForeignKey("image.id", ondelete="CASCADE"), primary_key=True
    )
    member_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True, index=True)
    status: Mapped[str] = mapped_column(sa.String(16))
    created_at: Mapped[datetime] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column()


class MetadefNamespace(ImageBase):
    """A metadata-definition namespace (Glance metadefs): a named catalogue of
    property, object and tag definitions, public or private to its owner."""

    __tablename__ = "metadef_namespace"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    namespace: Mapped[str] = mapped_column(sa.String(80), unique=True)
    display_name: Mapped[str | None] = mapped_column(sa.String(80), nullable=True)
    description: Mapped[str | None] = mapped_column(sa.String(500), nullable=True)
    visibility: Mapped[str] = mapped_column(sa.String(16))
    protected: Mapped[bool] = mapped_column(default=False)
    owner: Mapped[str | None] = mapped_column(sa.String(255), nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column()


class MetadefItem(ImageBase):
    """One definition inside a namespace: ``kind`` is object, property, tag or
    resource_type (an association); ``body`` is its JSON definition without the name."""

    __tablename__ = "metadef_item"
    namespace_id: Mapped[int] = mapped_column(
        sa.ForeignKey("metadef_namespace.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    body: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column()
