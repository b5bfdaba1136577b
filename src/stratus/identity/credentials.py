"""Identity service layer: credentials (``/v3/credentials``: a user's EC2 key
pairs, TOTP seeds, certificates) and stored policy documents (``/v3/policies``).

A credential's ``blob`` is the client's string, returned as given (Keystone
encrypts it at rest with its own key repository; Stratus keeps it in the
identity database, whose access is the deployment's to protect). An ``ec2``
credential's blob must be a JSON object with an ``access`` key, it needs a
project, and its id is the SHA-256 of the access key (so EC2 signatures can find
it), as in Keystone.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from stratus.common.errors import BadRequest, Conflict
from stratus.common.timeutil import new_hex_id
from stratus.identity import models as m
from stratus.identity.rows import get, stored

if TYPE_CHECKING:
    from stratus.identity.core import Identity

# The attributes a credential or policy has; anything else in a body is an "extra".
CREDENTIAL_KEYS = frozenset({"id", "links", "user_id", "project_id", "type", "blob"})
POLICY_KEYS = frozenset({"id", "links", "type", "blob"})


def ec2_access(blob: str) -> str:
    """The access key an ec2 blob holds; 400 when the blob is not such an object."""
    try:
        data = json.loads(blob)
    except ValueError:
        data = None
    if not isinstance(data, dict) or not isinstance(data.get("access"), str) or not data["access"]:
        raise BadRequest("An ec2 credential's blob must be a JSON object with an 'access' key, "
                         'such as \'{"access": "...", "secret": "..."}\'.')
    return str(data["access"])


def ec2_id(blob: str) -> str:
    """An ec2 credential's id: the SHA-256 hex digest of its access key."""
    return hashlib.sha256(ec2_access(blob).encode()).hexdigest()


class Credentials:
    """Credentials over the identity database (the API layer checks ownership)."""

    def __init__(self, core: Identity) -> None:
        self.core = core

    def create(self, user_id: str, project_id: str | None, ctype: str, blob: str,
               extra: dict[str, Any]) -> m.Credential:
        """A new credential for an existing user (and project, when one is named)."""
        with self.core.db.session() as s:
            get(s, m.User, user_id, "user")
            if project_id is not None:
                get(s, m.Project, project_id, "project")
            if ctype == "ec2":
                if project_id is None:
                    raise BadRequest("An ec2 credential needs a project_id.")
                cred_id = ec2_id(blob)
            else:
                cred_id = new_hex_id()
            if s.get(m.Credential, cred_id) is not None:
                raise Conflict("Conflict occurred attempting to store credential - "
                               "a credential with this access key already exists.")
            cred = m.Credential(id=cred_id, user_id=user_id, project_id=project_id, type=ctype,
                                blob=blob, extra=extra)
            with stored(s, "credential"):
                s.add(cred)
            return cred

    def find(self, filters: dict[str, str]) -> list[m.Credential]:
        """Credentials matching ``user_id`` and ``type`` (when given), by id."""
        q = sa.select(m.Credential).order_by(m.Credential.id)
        if "user_id" in filters:
            q = q.where(m.Credential.user_id == filters["user_id"])
        if "type" in filters:
            q = q.where(m.Credential.type == filters["type"])
        with self.core.db.session() as s:
            return list(s.scalars(q))

    def show(self, cred_id: str) -> m.Credential:
        with self.core.db.session() as s:
            cred: m.Credential = get(s, m.Credential, cred_id, "credential")
            return cred

    def update(self, cred_id: str, changes: dict[str, Any]) -> m.Credential:
        """Apply ``changes`` (user_id, project_id, type, blob, extra), keeping the
        ec2 rules (a project, a blob with an access key); the id never changes."""
        with self.core.db.session() as s:
            cred: m.Credential = get(s, m.Credential, cred_id, "credential")
            if "user_id" in changes:
                cred.user_id = get(s, m.User, changes["user_id"], "user").id
            if "project_id" in changes:
                pid = changes["project_id"]
                cred.project_id = get(s, m.Project, pid, "project").id if pid else None
            if "type" in changes:
                cred.type = changes["type"]
            if "blob" in changes:
                cred.blob = changes["blob"]
            if changes.get("extra"):
                cred.extra = {**(cred.extra or {}), **changes["extra"]}
            if cred.type == "ec2":
                if cred.project_id is None:
                    raise BadRequest("An ec2 credential needs a project_id.")
                ec2_access(cred.blob)  # still an object with an access key; the id stays
            return cred

    def delete(self, cred_id: str) -> None:
        with self.core.db.session() as s:
            s.delete(get(s, m.Credential, cred_id, "credential"))


class Policies:
    """Stored policy documents over the identity database."""

    def __init__(self, core: Identity) -> None:
        self.core = core

    def create(self, ptype: str, blob: str, extra: dict[str, Any]) -> m.Policy:
        with self.core.db.session() as s:
            policy = m.Policy(id=new_hex_id(), type=ptype, blob=blob, extra=extra)
            with stored(s, "policy"):
                s.add(policy)
            return policy

    def find(self, filters: dict[str, str]) -> list[m.Policy]:
        q = sa.select(m.Policy).order_by(m.Policy.id)
        if "type" in filters:
            q = q.where(m.Policy.type == filters["type"])
        with self.core.db.session() as s:
            return list(s.scalars(q))

    def show(self, policy_id: str) -> m.Policy:
        with self.core.db.session() as s:
            policy: m.Policy = get(s, m.Policy, policy_id, "policy")
            return policy

    def update(self, policy_id: str, changes: dict[str, Any]) -> m.Policy:
        with self.core.db.session() as s:
            policy: m.Policy = get(s, m.Policy, policy_id, "policy")
            if "type" in changes:
                policy.type = changes["type"]
            if "blob" in changes:
                policy.blob = changes["blob"]
            if changes.get("extra"):
                policy.extra = {**(policy.extra or {}), **changes["extra"]}
            return policy

    def delete(self, policy_id: str) -> None:
        with self.core.db.session() as s:
            s.delete(get(s, m.Policy, policy_id, "policy"))


def ec2_blob(cred: m.Credential) -> dict[str, Any]:
    """An ec2 credential's blob as an object (empty when it is not one)."""
    try:
        data = json.loads(cred.blob)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
