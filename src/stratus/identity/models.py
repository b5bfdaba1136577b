"""Identity database tables (SQLAlchemy 2). Schema changes go through migrations/."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class IdentityBase(DeclarativeBase):
    pass


JSON = sa.JSON()


class Domain(IdentityBase):
    __tablename__ = "domain"
    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(64), unique=True)
    description: Mapped[str] = mapped_column(sa.Text, default="")
    enabled: Mapped[bool] = mapped_column(default=True)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Project(IdentityBase):
    __tablename__ = "project"
    __table_args__ = (sa.UniqueConstraint("domain_id", "name", name="uq_project_domain_name"),)
    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(64))
    domain_id: Mapped[str] = mapped_column(sa.ForeignKey("domain.id"), index=True)
    parent_id: Mapped[str | None] = mapped_column(sa.ForeignKey("project.id"), nullable=True)
    description: Mapped[str] = mapped_column(sa.Text, default="")
    enabled: Mapped[bool] = mapped_column(default=True)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class User(IdentityBase):
    __tablename__ = "user"
    __table_args__ = (sa.UniqueConstraint("domain_id", "name", name="uq_user_domain_name"),)
    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(255))
    domain_id: Mapped[str] = mapped_column(sa.ForeignKey("domain.id"), index=True)
    default_project_id: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    description: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    enabled: Mapped[bool] = mapped_column(default=True)
    password_hash: Mapped[str | None] = mapped_column(sa.String(255), nullable=True)
    password_changed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column()
    # Lockout (security.py): wrong passwords in a row and when the last one came.
    failed_auth_count: Mapped[int] = mapped_column(default=0, server_default="0")
    failed_auth_at: Mapped[datetime | None] = mapped_column(nullable=True)


class PasswordHistory(IdentityBase):
    """A user's earlier password hashes, for ``unique_last_password_count``."""

    __tablename__ = "password_history"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(
        sa.ForeignKey("user.id", ondelete="CASCADE"), index=True
    )
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    created_at: Mapped[datetime] = mapped_column()
    # So that a new user's row is inserted before its first history row.
    user: Mapped[User] = relationship()


class Group(IdentityBase):
    __tablename__ = "group"
    __table_args__ = (sa.UniqueConstraint("domain_id", "name", name="uq_group_domain_name"),)
    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(64))
    domain_id: Mapped[str] = mapped_column(sa.ForeignKey("domain.id"), index=True)
    description: Mapped[str] = mapped_column(sa.Text, default="")


class Membership(IdentityBase):
    __tablename__ = "user_group_membership"
    user_id: Mapped[str] = mapped_column(
        sa.ForeignKey("user.id", ondelete="CASCADE"), primary_key=True
    )
    group_id: Mapped[str] = mapped_column(
        sa.ForeignKey("group.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class Role(IdentityBase):
    __tablename__ = "role"
    __table_args__ = (sa.UniqueConstraint("domain_id", "name", name="uq_role_domain_name"),)
    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(255))
    # '<<null>>' stands for a global role so the unique constraint also holds for them.
    domain_id: Mapped[str] = mapped_column(sa.String(64), default="<<null>>")
    description: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class ImpliedRole(IdentityBase):
    __tablename__ = "implied_role"
    prior_role_id: Mapped[str] = mapped_column(
        sa.ForeignKey("role.id", ondelete="CASCADE"), primary_key=True
    )
    implied_role_id: Mapped[str] = mapped_column(
        sa.ForeignKey("role.id", ondelete="CASCADE"), primary_key=True
    )


class Assignment(IdentityBase):
    """A role granted to an actor (user or group) on a target (project or domain)."""

    __tablename__ = "assignment"
    type: Mapped[str] = mapped_column(sa.String(16), primary_key=True)  # UserProject, ...
    actor_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True, index=True)
    target_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True, index=True)
    role_id: Mapped[str] = mapped_column(
        sa.ForeignKey("role.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class Region(IdentityBase):
    __tablename__ = "region"
    id: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    description: Mapped[str] = mapped_column(sa.Text, default="")
    parent_region_id: Mapped[str | None] = mapped_column(sa.String(255), nullable=True)


class Service(IdentityBase):
    __tablename__ = "service"
    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    type: Mapped[str] = mapped_column(sa.String(255), index=True)
    name: Mapped[str] = mapped_column(sa.String(255), default="")
    description: Mapped[str] = mapped_column(sa.Text, default="")
    enabled: Mapped[bool] = mapped_column(default=True)


class Endpoint(IdentityBase):
    __tablename__ = "endpoint"
    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    service_id: Mapped[str] = mapped_column(
        sa.ForeignKey("service.id", ondelete="CASCADE"), index=True
    )
    interface: Mapped[str] = mapped_column(sa.String(8))
    region_id: Mapped[str | None] = mapped_column(
        sa.ForeignKey("region.id", ondelete="SET NULL"), nullable=True
    )
    url: Mapped[str] = mapped_column(sa.Text)
    enabled: Mapped[bool] = mapped_column(default=True)


class RevocationEvent(IdentityBase):
    """Tokens matching an event and issued at or before ``issued_before`` are revoked
    (identity/revocation.py)."""

    __tablename__ = "revocation_event"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    audit_id: Mapped[str | None] = mapped_column(sa.String(32), nullable=True, index=True)
    user_id: Mapped[str | None] = mapped_column(sa.String(64), nullable=True, index=True)
    project_id: Mapped[str | None] = mapped_column(sa.String(64), nullable=True, index=True)
    # Added by migration 0002 (see identity/revocation.py for what each one matches).
    scope_domain_id: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    domain_id: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    role_id: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    app_cred_id: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    issued_before: Mapped[datetime] = mapped_column()
    revoked_at: Mapped[datetime] = mapped_column(index=True)


class ApplicationCredential(IdentityBase):
    __tablename__ = "application_credential"
    __table_args__ = (sa.UniqueConstraint("user_id", "name", name="uq_appcred_user_name"),)
    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(255))
    user_id: Mapped[str] = mapped_column(sa.ForeignKey("user.id", ondelete="CASCADE"), index=True)
    project_id: Mapped[str] = mapped_column(sa.String(64))
    description: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    secret_hash: Mapped[str] = mapped_column(sa.String(255))
    expires_at: Mapped[datetime | None] = mapped_column(nullable=True)
    unrestricted: Mapped[bool] = mapped_column(default=False)
    roles: Mapped[list[str]] = mapped_column(JSON, default=list)


class Credential(IdentityBase):
    """A user's stored secret (``/v3/credentials``): an EC2 key pair, a TOTP seed,
    a certificate; ``blob`` is the client's string, kept as given."""

    __tablename__ = "credential"
    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(sa.ForeignKey("user.id", ondelete="CASCADE"), index=True)
    project_id: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    type: Mapped[str] = mapped_column(sa.String(255), index=True)
    blob: Mapped[str] = mapped_column(sa.Text)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Policy(IdentityBase):
    """A stored policy document (``/v3/policies``): an opaque blob and its media type."""

    __tablename__ = "policy"
    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    type: Mapped[str] = mapped_column(sa.String(255))
    blob: Mapped[str] = mapped_column(sa.Text)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Trust(IdentityBase):
    """A trustor's delegation of some of its roles on a project to a trustee
    (``/v3/OS-TRUST/trusts``, identity/trusts.py)."""

    __tablename__ = "trust"
    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    trustor_user_id: Mapped[str] = mapped_column(
        sa.ForeignKey("user.id", ondelete="CASCADE"), index=True)
    trustee_user_id: Mapped[str] = mapped_column(
        sa.ForeignKey("user.id", ondelete="CASCADE"), index=True)
    project_id: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    impersonation: Mapped[bool] = mapped_column(default=False)
    expires_at: Mapped[datetime | None] = mapped_column(nullable=True)
    remaining_uses: Mapped[int | None] = mapped_column(nullable=True)
    roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
