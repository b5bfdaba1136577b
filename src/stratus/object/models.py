"""The object listing database (SQLAlchemy 2): accounts, containers and the object rows
their listings come from. The bytes and each object's own metadata live on the storage
devices (:mod:`stratus.object.diskfile`); these rows are what listings, counts and
quotas read. Only stratus-object and its consistency processes read these tables."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from stratus.common.db import Base


class ObjectBase(Base):
    __abstract__ = True
    metadata = sa.MetaData()


class Account(ObjectBase):
    """An account (``AUTH_<project_id>``), made on its first write."""

    __tablename__ = "account"
    name: Mapped[str] = mapped_column(sa.String(256), primary_key=True)
    meta: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    created_at: Mapped[str] = mapped_column(sa.String(20))
    put_timestamp: Mapped[str] = mapped_column(sa.String(20))


class Container(ObjectBase):
    """A container; ``meta`` holds its user metadata and its ACLs and quotas."""

    __tablename__ = "container"
    account: Mapped[str] = mapped_column(sa.String(256), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(256), primary_key=True)
    meta: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    policy: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[str] = mapped_column(sa.String(20))
    put_timestamp: Mapped[str] = mapped_column(sa.String(20))


class ObjectRow(ObjectBase):
    """One object as its container's listing shows it (the newest PUT)."""

    __tablename__ = "object"
    account: Mapped[str] = mapped_column(sa.String(256), primary_key=True)
    container: Mapped[str] = mapped_column(sa.String(256), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(1024), primary_key=True)
    size: Mapped[int] = mapped_column(sa.BigInteger)
    etag: Mapped[str] = mapped_column(sa.String(64))
    content_type: Mapped[str] = mapped_column(sa.String(256))
    timestamp: Mapped[str] = mapped_column(sa.String(20))
    delete_at: Mapped[int | None] = mapped_column(sa.BigInteger, nullable=True, index=True)


class ListingMove(ObjectBase):
    """The move of the listings above to the storage devices' databases: one row once
    it is done (:mod:`stratus.object.migrate`); the tables above are no longer used then."""

    __tablename__ = "listing_move"
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    done_at: Mapped[str] = mapped_column(sa.String(20))
    containers: Mapped[int] = mapped_column(sa.Integer)
    objects: Mapped[int] = mapped_column(sa.BigInteger)
