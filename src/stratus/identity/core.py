"""Identity service layer, its core: authentication, tokens, revocation,
effective roles, and the one ``Identity`` object the HTTP layer is bound to.
(Over 500 lines: token issue and validation with its cache share their state here; the
resource families are already modules of their own.)

The HTTP layer (the modules of ``api/``) parses requests and renders
responses; everything that reads or writes the database lives in the service
layer: here for tokens, and in one module per resource family (domains.py,
projects.py, users.py, groups.py, roles.py, assignments.py, catalog.py,
app_credentials.py, credentials.py, trusts.py), reached as attributes of
``Identity`` (``identity.users``...). This file is about 640 lines:
authentication and validation read best in one place.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from stratus.common.auth import AUTH_REQUIRED, AuthContext
from stratus.common.db import Database
from stratus.common.errors import BadRequest, NotFound, Unauthorized
from stratus.common.timeutil import from_timestamp, utcnow
from stratus.identity import models as m
from stratus.identity import rows, views
from stratus.identity.app_credentials import AppCredentials
from stratus.identity.assignments import SYSTEM_ID, Assignments
from stratus.identity.catalog import Endpoints, Regions, Services, catalog_entries
from stratus.identity.credentials import Credentials, Policies
from stratus.identity.domains import Domains
from stratus.identity.groups import Groups
from stratus.identity.passwords import dummy_hash, hash_password, verify_password
from stratus.identity.projects import Projects
from stratus.identity.revocation import RevocationCache, TokenFacts
from stratus.identity.roles import Roles
from stratus.identity.rows import GLOBAL
from stratus.identity.security import SecurityRules
from stratus.identity.tokencache import NotCached, ValidationCache
from stratus.identity.tokens import TokenDecodeError, TokenPayload, TokenSealer, new_audit_id
from stratus.identity.trusts import Trusts
from stratus.identity.users import Users
from stratus.identity.views import INTERFACES

ASSIGNMENT_TYPES = ("UserProject", "UserDomain", "GroupProject", "GroupDomain",
                    "UserSystem", "GroupSystem")
__all__ = ["ASSIGNMENT_TYPES", "GLOBAL", "INTERFACES", "Identity", "ValidatedToken"]


@dataclass
class ValidatedToken:
    """A token that decrypted, has not expired, is not revoked, and still grants its scope."""

    payload: TokenPayload
    user: m.User
    user_domain: m.Domain
    project: m.Project | None
    project_domain: m.Domain | None
    domain: m.Domain | None
    roles: list[m.Role]
    trust: m.Trust | None = None
    # The token document as JSON, with (True) and without (False) its catalog, made
    # once per validation: a cached validation carries its renderings with it, and a
    # fresh validation starts without any (Identity.token_json).
    rendered: dict[bool, bytes] = field(default_factory=dict, repr=False, compare=False)

    def context(self, token: str) -> AuthContext:
        return AuthContext(
            user_id=self.user.id,
            user_name=self.user.name,
            user_domain_id=self.user.domain_id,
            project_id=self.project.id if self.project else None,
            project_name=self.project.name if self.project else None,
            project_domain_id=self.project.domain_id if self.project else None,
            domain_id=self.domain.id if self.domain else None,
            system=self.payload.system,
            roles=frozenset(r.name for r in self.roles),
            audit_ids=tuple(self.payload.audit_ids),
            expires_at=self.payload.expires_at,
            token=token,
            trust_id=self.payload.trust_id,
        )


class Identity:
    """The identity service's behaviour over its database."""

    def __init__(
        self,
        db: Database,
        sealer: TokenSealer,
        token_ttl: int = 3600,
        hash_algorithm: str = "argon2id",
        validation_cache_seconds: float = 0,
        security: SecurityRules | None = None,
    ) -> None:
        self.db = db
        # Lockout and password rules (security.py); all off by default.
        self.security = security or SecurityRules()
        self.sealer = sealer
        self.token_ttl = token_ttl
        self.hash_algorithm = hash_algorithm
        # The resource families, each owning its queries and transactions.
        self.domains = Domains(self)
        self.projects = Projects(self)
        self.users = Users(self)
        self.groups = Groups(self)
        self.app_credentials = AppCredentials(self)
        self.roles = Roles(self)
        self.assignments = Assignments(self)
        self.regions = Regions(self)
        self.services = Services(self)
        self.endpoints = Endpoints(self)
        self.credentials = Credentials(self)
        self.policies = Policies(self)
        self.trusts = Trusts(self)
        self.revocations = RevocationCache()
        # Validated tokens (identity/tokencache.py); off when the seconds are 0.
        self.validations = ValidationCache(validation_cache_seconds)
        if validation_cache_seconds > 0:
            self.validations.watch(db.engine)

    # ---- lookups -------------------------------------------------------------------------

    get = staticmethod(rows.get)

    @staticmethod
    def find_domain(session: Session, spec: dict[str, Any] | None) -> m.Domain:
        """A domain from {"id": ...} or {"name": ...}; 401 when absent (auth path)."""
        if not isinstance(spec, dict) or not (spec.get("id") or spec.get("name")):
            raise BadRequest("A domain must be given by 'id' or 'name'.")
        if spec.get("id"):
            dom = session.get(m.Domain, str(spec["id"]))
        else:
            dom = session.scalar(sa.select(m.Domain).where(m.Domain.name == str(spec["name"])))
        if dom is None:
            raise Unauthorized(AUTH_REQUIRED)
        return dom

    # ---- roles ---------------------------------------------------------------------------

    @staticmethod
    def expand_implied(session: Session, role_ids: Iterable[str]) -> set[str]:
        seen = set(role_ids)
        frontier = list(seen)
        while frontier:
            rows = session.scalars(
                sa.select(m.ImpliedRole.implied_role_id).where(
                    m.ImpliedRole.prior_role_id.in_(frontier)
                )
            ).all()
            frontier = [r for r in rows if r not in seen]
            seen.update(frontier)
        return seen

    @staticmethod
    def group_ids(session: Session, user_id: str) -> list[str]:
        return list(
            session.scalars(
                sa.select(m.Membership.group_id).where(m.Membership.user_id == user_id)
            ).all()
        )

    def effective_roles(
        self, session: Session, user_id: str, target_id: str, target: str
    ) -> list[m.Role]:
        """Roles the user holds on a project or domain, directly or through groups."""
        actors = [user_id, *self.group_ids(session, user_id)]
        kinds = (f"User{target}", f"Group{target}")
        direct = session.scalars(
            sa.select(m.Assignment.role_id).where(
                m.Assignment.type.in_(kinds),
                m.Assignment.actor_id.in_(actors),
                m.Assignment.target_id == target_id,
            )
        ).all()
        if not direct:
            return []
        ids = self.expand_implied(session, direct)
        # Domain-specific roles only lead to the global roles they imply (Keystone).
        return list(session.scalars(sa.select(m.Role).where(
            m.Role.id.in_(ids), m.Role.domain_id == GLOBAL)).all())

    # ---- authentication ------------------------------------------------------------------

    def _password_user(self, session: Session, spec: Any) -> m.User:
        if not isinstance(spec, dict) or not isinstance(spec.get("user"), dict):
            raise BadRequest("The password method needs 'password': {'user': {...}}.")
        user_spec = spec["user"]
        password = user_spec.get("password")
        if not isinstance(password, str):
            raise BadRequest("The password method needs user.password as a string.")
        user: m.User | None
        if user_spec.get("id"):
            user = session.get(m.User, str(user_spec["id"]))
        elif user_spec.get("name"):
            try:
                domain_id: str | None = self.find_domain(session, user_spec.get("domain")).id
            except Unauthorized:
                domain_id = None  # fall through to the same hashing cost as a bad password
            user = session.scalar(
                sa.select(m.User).where(
                    m.User.domain_id == domain_id, m.User.name == str(user_spec["name"])
                )
            )
        else:
            raise BadRequest("The password method needs user.id, or user.name with user.domain.")
        # Always spend the hashing time so timing does not tell which part was wrong.
        ok = verify_password(password, user.password_hash if user else dummy_hash())
        if user is not None and self.security.locked(user):
            # Locked: the right password gets the same answer as a wrong one.
            raise Unauthorized(AUTH_REQUIRED)
        if user is not None and not ok:
            # Counted in a transaction of its own: the caller's rolls back with the 401.
            with self.db.session() as counting:
                self.security.record_failure(counting, user.id)
        if user is None or not ok or not user.enabled:
            raise Unauthorized(AUTH_REQUIRED)
        if self.security.expired(user):
            # Keystone's answer; the user changes it with POST /v3/users/{id}/password.
            raise Unauthorized(
                f"The password is expired and needs to be changed for user: {user.id}."
            )
        self.security.clear(user)
        return user

    def _scope(
        self, session: Session, scope: Any, user: m.User
    ) -> tuple[str | None, str | None, bool]:
        """(project_id, domain_id, system) asked for; checks only the names exist."""
        if scope is None or scope == "unscoped":
            if scope is None and user.default_project_id:
                project = session.get(m.Project, user.default_project_id)
                if (
                    project is not None
                    and project.enabled
                    and self.effective_roles(session, user.id, project.id, "Project")
                ):
                    return project.id, None, False
            return None, None, False
        if not isinstance(scope, dict) or len(scope) != 1:
            raise BadRequest("scope must have exactly one of 'project', 'domain' or 'system'.")
        if "project" in scope:
            spec = scope["project"]
            if not isinstance(spec, dict):
                raise BadRequest("scope.project must be an object with 'id' or 'name'.")
            if spec.get("id"):
                project = session.get(m.Project, str(spec["id"]))
            elif spec.get("name"):
                domain = self.find_domain(session, spec.get("domain"))
                project = session.scalar(
                    sa.select(m.Project).where(
                        m.Project.domain_id == domain.id, m.Project.name == str(spec["name"])
                    )
                )
            else:
                raise BadRequest("scope.project needs 'id', or 'name' with 'domain'.")
            if project is None:
                raise Unauthorized(AUTH_REQUIRED)
            return project.id, None, False
        if "domain" in scope:
            domain = self.find_domain(session, scope["domain"])
            return None, domain.id, False
        if "system" in scope:
            if scope["system"] != {"all": True}:
                raise BadRequest("scope.system must be {'all': true}.")
            return None, None, True
        raise BadRequest("scope must have exactly one of 'project', 'domain' or 'system'.")

    def _scope_or_trust(
        self, session: Session, scope: Any, user: m.User
    ) -> tuple[m.User, str | None, str | None, bool, str | None]:
        """(token user, project_id, domain_id, system, trust_id): ``_scope``, or for
        ``{"OS-TRUST:trust": {"id": ...}}`` the trust's project, with the trustor as
        the token's user when the trust allows impersonation (trusts.py)."""
        if isinstance(scope, dict) and "OS-TRUST:trust" in scope:
            if len(scope) != 1:
                raise BadRequest("A trust scope cannot be combined with another scope.")
            trust = self.trusts.consume(session, scope["OS-TRUST:trust"], user)
            if trust.impersonation:
                user = self.get(session, m.User, trust.trustor_user_id, "user")
            return user, trust.project_id, None, False, trust.id
        return (user, *self._scope(session, scope, user), None)

    def authenticate(self, body: Any) -> tuple[str, ValidatedToken]:
        """POST /v3/auth/tokens: returns the new token and what it grants."""
        if not isinstance(body, dict) or not isinstance(body.get("auth"), dict):
            raise BadRequest("The request body must be {'auth': {'identity': {...}}}.")
        auth = body["auth"]
        ident = auth.get("identity")
        if not isinstance(ident, dict) or not isinstance(ident.get("methods"), list):
            raise BadRequest("auth.identity.methods must be a list such as ['password'].")
        methods = [str(x) for x in ident["methods"]]
        if len(methods) != 1 or methods[0] not in ("password", "token", "application_credential"):
            raise BadRequest(
                f"Unsupported auth methods {methods}: use exactly one of "
                "'password', 'token' or 'application_credential'."
            )
        method = methods[0]
        now = time.time()
        with self.db.session() as session:
            audit_ids = [new_audit_id()]
            expires_at = now + self.token_ttl
            app_cred_id = trust_id = None
            if method == "password":
                user = self._password_user(session, ident.get("password"))
                user, project_id, domain_id, system, trust_id = self._scope_or_trust(
                    session, auth.get("scope"), user)
            elif method == "token":
                spec = ident.get("token")
                if not isinstance(spec, dict) or not isinstance(spec.get("id"), str):
                    raise BadRequest("The token method needs 'token': {'id': '<token>'}.")
                try:
                    old = self.validate(spec["id"], session=session)
                except NotFound:
                    raise Unauthorized(AUTH_REQUIRED) from None
                user = old.user
                if old.payload.app_cred_id or old.payload.trust_id:
                    raise Unauthorized(AUTH_REQUIRED)  # neither kind may be rescoped
                user, project_id, domain_id, system, trust_id = self._scope_or_trust(
                    session, auth.get("scope", "unscoped"), user
                )
                # A rescoped token never outlives the token it came from.
                expires_at = old.payload.expires_at
                audit_ids.append(old.payload.audit_ids[-1])
                methods = sorted(set(old.payload.methods) | {"token"})
            else:
                cred, user = self._app_credential(session, ident.get("application_credential"))
                if auth.get("scope") is not None:
                    raise BadRequest("An application credential is already scoped; drop 'scope'.")
                app_cred_id, project_id, domain_id, system = cred.id, cred.project_id, None, False
                if cred.expires_at is not None:
                    expires_at = min(expires_at, cred.expires_at.replace(tzinfo=UTC).timestamp())
            payload = TokenPayload(
                user_id=user.id,
                methods=methods,
                expires_at=expires_at,
                issued_at=now,
                audit_ids=audit_ids,
                project_id=project_id,
                domain_id=domain_id,
                system=system,
                app_cred_id=app_cred_id,
                trust_id=trust_id,
            )
            try:
                validated = self._check_payload(session, payload)
            except NotFound:
                raise Unauthorized(AUTH_REQUIRED) from None
            return self.sealer.seal(payload), validated

    def _app_credential(
        self, session: Session, spec: Any
    ) -> tuple[m.ApplicationCredential, m.User]:
        if not isinstance(spec, dict) or not isinstance(spec.get("secret"), str):
            raise BadRequest(
                "The application_credential method needs 'id' (or 'name' and 'user') and 'secret'."
            )
        if spec.get("id"):
            cred = session.get(m.ApplicationCredential, str(spec["id"]))
        elif spec.get("name") and isinstance(spec.get("user"), dict):
            user = self._find_user(session, spec["user"])
            cred = session.scalar(
                sa.select(m.ApplicationCredential).where(
                    m.ApplicationCredential.user_id == user.id,
                    m.ApplicationCredential.name == str(spec["name"]),
                )
            )
        else:
            raise BadRequest("application_credential needs 'id', or 'name' with 'user'.")
        ok = verify_password(spec["secret"], cred.secret_hash if cred else dummy_hash())
        if cred is None or not ok:
            raise Unauthorized(AUTH_REQUIRED)
        if cred.expires_at is not None and cred.expires_at <= utcnow(precise=True):
            raise Unauthorized(AUTH_REQUIRED)
        user_obj = session.get(m.User, cred.user_id)
        if user_obj is None or not user_obj.enabled:
            raise Unauthorized(AUTH_REQUIRED)
        return cred, user_obj

    def _find_user(self, session: Session, spec: dict[str, Any]) -> m.User:
        if spec.get("id"):
            user = session.get(m.User, str(spec["id"]))
        else:
            domain = self.find_domain(session, spec.get("domain"))
            user = session.scalar(
                sa.select(m.User).where(
                    m.User.domain_id == domain.id, m.User.name == str(spec.get("name"))
                )
            )
        if user is None:
            raise Unauthorized(AUTH_REQUIRED)
        return user

    # ---- validation ----------------------------------------------------------------------

    def _revoked(
        self,
        session: Session,
        payload: TokenPayload,
        user: m.User,
        project: m.Project | None,
        roles: list[m.Role],
        roles_from: str | None,
        fingerprint: Any = None,
    ) -> bool:
        """Whether a revocation event matches the token (identity/revocation.py)."""
        domains = {user.domain_id}
        if project is not None:
            domains.add(project.domain_id)
        if payload.domain_id:
            domains.add(payload.domain_id)
        facts = TokenFacts(
            issued_at=payload.issued_at,
            user_id=payload.user_id,
            audit_ids=tuple(payload.audit_ids),
            project_id=roles_from,
            scope_domain_id=payload.domain_id,
            domain_ids=frozenset(domains),
            role_ids=frozenset(r.id for r in roles),
            app_cred_id=payload.app_cred_id,
        )
        return self.revocations.current(session, fingerprint).revoked(facts)

    def _check_payload(self, session: Session, payload: TokenPayload,
                       fingerprint: Any = None) -> ValidatedToken:
        """Everything but decryption: expiry, revocation, user/project state, roles
        (``fingerprint``: the revocation events' as the session already read it)."""
        if payload.expires_at <= time.time():
            raise NotFound("The token has expired.")
        user = session.get(m.User, payload.user_id)
        if user is None or not user.enabled:
            raise NotFound("The token's user is disabled or no longer exists.")
        user_domain = session.get(m.Domain, user.domain_id)
        if user_domain is None or not user_domain.enabled:
            raise NotFound("The token's user domain is disabled.")
        project = project_domain = domain = trust = None
        roles: list[m.Role] = []
        roles_from = payload.project_id  # the project the roles come from
        if payload.project_id:
            project = session.get(m.Project, payload.project_id)
            if project is None or not project.enabled:
                raise NotFound("The token's project is disabled or no longer exists.")
            project_domain = session.get(m.Domain, project.domain_id)
            if project_domain is None or not project_domain.enabled:
                raise NotFound("The token's project domain is disabled.")
            roles = self.effective_roles(session, user.id, project.id, "Project")
        elif payload.domain_id:
            domain = session.get(m.Domain, payload.domain_id)
            if domain is None or not domain.enabled:
                raise NotFound("The token's domain is disabled or no longer exists.")
            roles = self.effective_roles(session, user.id, domain.id, "Domain")
        elif payload.system:
            roles_from, roles = self._system_roles(session, user.id)
        if payload.trust_id:
            # The trust's roles, as long as the trust and its trustor still give them.
            trust, roles = self.trusts.token_roles(session, payload.trust_id, user.id)
        if payload.app_cred_id:
            cred = session.get(m.ApplicationCredential, payload.app_cred_id)
            if cred is None:
                raise NotFound("The token's application credential no longer exists.")
            roles = [r for r in roles if r.id in set(cred.roles)]
        if self._revoked(session, payload, user, project, roles, roles_from, fingerprint):
            raise NotFound("The token has been revoked.")
        if (payload.project_id or payload.domain_id or payload.system) and not roles:
            raise Unauthorized(AUTH_REQUIRED)
        return ValidatedToken(payload, user, user_domain, project, project_domain, domain, roles,
                              trust)

    def _system_roles(self, session: Session, user_id: str) -> tuple[str, list[m.Role]]:
        """The roles the user holds on the system (``PUT /v3/system/users/...``),
        directly or through a group: (the system's target id, the roles)."""
        return SYSTEM_ID, self.effective_roles(session, user_id, SYSTEM_ID, "System")

    def validate(self, token: str, session: Session | None = None,
                 cached_only: bool = False) -> ValidatedToken:
        """Decrypt and check a token; 404 for a token that is not (or no longer) valid.
        Without a session, a result of the validation cache (identity/tokencache.py)
        answers while nothing it came from can have changed. ``cached_only``: answer
        only from the cache (one read of the revocation events' fingerprint), else
        raise :class:`NotCached` (the caller validates again off the event loop)."""
        try:
            payload = self.sealer.unseal(token)
        except TokenDecodeError:
            raise NotFound("The token is not valid.") from None
        cache = self.validations
        if (session is None and cache.seconds > 0 and not payload.trust_id
                and not payload.app_cred_id):
            return self._validate_cached(token, payload, cache, cached_only)
        if cached_only:
            raise NotCached(token)
        try:
            if session is not None:
                return self._check_payload(session, payload)
            with self.db.session() as own:
                return self._check_payload(own, payload)
        except Unauthorized:
            raise NotFound("The token no longer grants any role on its scope.") from None

    def _validate_cached(self, token: str, payload: TokenPayload,
                         cache: ValidationCache, cached_only: bool = False) -> ValidatedToken:
        if payload.expires_at <= time.time():
            raise NotFound("The token has expired.")
        before = cache.state()
        # The events' fingerprint as committed now (no ORM session: a hit opens none);
        # a miss reads everything else in a session begun after it.
        key = self.revocations.fingerprint_now(self.db.engine)
        hit = cache.get(token, key, payload.expires_at)
        if hit is not None:
            return hit
        if cached_only:
            raise NotCached(token)
        try:
            with self.db.session() as own:
                validated = self._check_payload(own, payload, key)
        except Unauthorized:
            raise NotFound("The token no longer grants any role on its scope.") from None
        cache.put(token, validated, key, before)
        return validated

    @property
    def validates_on_loop(self) -> bool:
        """Whether a cached validation may run on the event loop: the cache is on and
        its one read (the events' fingerprint) is of a local SQLite file, which takes
        microseconds; a PostgreSQL read waits on the network, so it stays in a thread."""
        return self.validations.seconds > 0 and self.db.engine.dialect.name == "sqlite"

    def context(self, token: str) -> AuthContext:
        """The caller behind X-Auth-Token, or 401."""
        if not token:
            raise Unauthorized(AUTH_REQUIRED)
        try:
            return self.validate(token).context(token)
        except NotFound:
            raise Unauthorized(AUTH_REQUIRED) from None

    # ---- revocation ----------------------------------------------------------------------

    def revoke(
        self,
        session: Session,
        audit_id: str | None = None,
        user_id: str | None = None,
        project_id: str | None = None,
        *,
        scope_domain_id: str | None = None,
        domain_id: str | None = None,
        role_id: str | None = None,
        app_cred_id: str | None = None,
    ) -> None:
        """Record a revocation event: every token matching all the attributes given
        and issued until now stays revoked (identity/revocation.py says what each
        attribute matches)."""
        attrs = {"audit_id": audit_id, "user_id": user_id, "project_id": project_id,
                 "scope_domain_id": scope_domain_id, "domain_id": domain_id,
                 "role_id": role_id, "app_cred_id": app_cred_id}
        if not any(attrs.values()):
            raise ValueError("a revocation event must name at least one attribute")
        now = utcnow(precise=True)
        session.add(m.RevocationEvent(**attrs, issued_before=now, revoked_at=now))
        self.prune_revocations(session)

    def revoke_grant(
        self, session: Session, actor: str, actor_id: str, target: str, target_id: str
    ) -> None:
        """A grant is going away: revoke the user's (or, for a group grant, each
        member's) tokens on the target, whatever roles they carry (a token holds no
        list of roles, so one issued before the grant went away cannot tell later
        whether it had that role)."""
        if actor == "Group":
            users = list(session.scalars(
                sa.select(m.Membership.user_id).where(m.Membership.group_id == actor_id)))
        else:
            users = [actor_id]
        # A system grant's target id is SYSTEM_ID, which a system-scoped token's
        # revocation facts carry as their project_id (revocation.py).
        where = {"project_id": target_id} if target in ("Project", "System") else {
            "scope_domain_id": target_id}
        for uid in users:
            self.revoke(session, user_id=uid, **where)

    def revoke_audit_id(self, audit_id: str) -> None:
        """Revoke one token (and the tokens rescoped from it) by its audit id."""
        with self.db.session() as session:
            self.revoke(session, audit_id=audit_id)

    def prune_revocations(self, session: Session) -> int:
        """Drop events older than any token that could still be alive."""
        cutoff = from_timestamp(time.time() - self.token_ttl - 60)
        result = session.execute(
            sa.delete(m.RevocationEvent).where(m.RevocationEvent.revoked_at < cutoff)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    # ---- passwords -----------------------------------------------------------------------

    def set_password(self, session: Session, user: m.User, password: str) -> None:
        """Set a password that passes the rules (400 naming the rule otherwise)."""
        self.security.check_password(session, user, password)
        user.password_hash = hash_password(password, self.hash_algorithm)
        user.password_changed_at = utcnow(precise=True)
        self.security.remember(session, user)

    # ---- catalog -------------------------------------------------------------------------

    catalog = staticmethod(catalog_entries)

    def service_catalog(self, project_id: str | None = None) -> list[dict[str, Any]]:
        """The catalog a token scoped to ``project_id`` carries (GET /v3/auth/catalog)."""
        with self.db.session() as session:
            return self.catalog(session, project_id)

    def token_json(self, vt: ValidatedToken, include_catalog: bool = True,
                   cached_only: bool = False) -> bytes:
        """The token document (:meth:`token_body`) as JSON, rendered once per validation
        (``vt.rendered``): a cached validation's document, catalog included, is as
        fresh as the validation (identity/tokencache.py). ``cached_only``: raise
        :class:`NotCached` instead of reading the catalog."""
        body = vt.rendered.get(include_catalog)
        if body is None:
            p = vt.payload
            if cached_only and include_catalog and (p.project_id or p.domain_id or p.system):
                raise NotCached("catalog")
            body = json.dumps(self.token_body(None, vt, include_catalog), ensure_ascii=False,
                              allow_nan=False, separators=(",", ":")).encode()
            vt.rendered[include_catalog] = body
        return body

    def token_body(
        self, session: Session | None, vt: ValidatedToken, include_catalog: bool = True
    ) -> dict[str, Any]:
        """The token document (views.token), with the catalog when the token is
        scoped and ``include_catalog``."""
        p = vt.payload
        catalog = None
        if (p.project_id or p.domain_id or p.system) and include_catalog:
            catalog = (self.service_catalog(p.project_id) if session is None
                       else self.catalog(session, p.project_id))
        return views.token(vt, catalog, self.security.password_expires_days)
