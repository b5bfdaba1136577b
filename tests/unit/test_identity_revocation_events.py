"""Revocation events: the matching rules, the in-memory cache, and the revocation
matrix in-process (the same matrix runs against a real server in
tests/integration/test_identity_revocation.py)."""

from __future__ import annotations

from datetime import datetime
from types import SimpleNamespace

import pytest
from argon2 import PasswordHasher

from identity_api import Api
from revocation_matrix import CASES, PW, refused, works
from stratus.common.timeutil import from_timestamp
from stratus.identity import passwords
from stratus.identity.core import Identity
from stratus.identity.revocation import RevocationList, TokenFacts

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """The cases make many users and tokens: argon2 at a low cost, so the module stays
    fast (the hashing is not what it tests; the integration matrix uses the real cost)."""
    monkeypatch.setattr(passwords, "_argon2",
                        PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))

T0 = 1_800_000_000.0


def event(before: float = T0, /, **attrs: str) -> SimpleNamespace:
    base = dict.fromkeys(("audit_id", "user_id", "project_id", "scope_domain_id",
                          "domain_id", "role_id", "app_cred_id"))
    base.update(attrs)
    return SimpleNamespace(**base, issued_before=from_timestamp(before))


def facts(issued: float = T0 - 10, **kw: object) -> TokenFacts:
    base: dict = {"user_id": "u1", "audit_ids": ("a1", "a0"), "project_id": "p1",
                  "domain_ids": frozenset({"d1", "d2"}), "role_ids": frozenset({"r1", "r2"})}
    base.update(kw)
    return TokenFacts(issued_at=issued, **base)


@pytest.mark.parametrize(("attrs", "hit"), [
    ({"user_id": "u1"}, True),
    ({"user_id": "u2"}, False),
    ({"audit_id": "a0"}, True),  # the token it was rescoped from
    ({"audit_id": "zz"}, False),
    ({"user_id": "u1", "project_id": "p1"}, True),
    ({"user_id": "u1", "project_id": "p2"}, False),
    ({"user_id": "u2", "project_id": "p1"}, False),
    ({"project_id": "p1"}, True),
    ({"domain_id": "d2"}, True),  # the user's, the project's or the scope domain
    ({"domain_id": "d3"}, False),
    ({"user_id": "u1", "scope_domain_id": "d1"}, False),  # a project-scoped token
    ({"role_id": "r2"}, True),
    ({"role_id": "r3"}, False),
    ({"app_cred_id": "c1"}, False),
    ({}, False),  # an event naming nothing is ignored, never "revoke everything"
])
def test_an_event_matches_when_every_attribute_it_names_matches(
        attrs: dict[str, str], hit: bool) -> None:
    assert RevocationList([event(**attrs)]).revoked(facts()) is hit


def test_only_tokens_issued_at_or_before_the_event_are_revoked() -> None:
    events = RevocationList([event(T0, user_id="u1")])
    assert events.revoked(facts(issued=T0 - 1))
    assert events.revoked(facts(issued=T0))
    assert not events.revoked(facts(issued=T0 + 0.001))
    # Two events on the same key: the later one wins.
    events = RevocationList([event(T0, user_id="u1"), event(T0 + 60, user_id="u1")])
    assert events.revoked(facts(issued=T0 + 30)) and not events.revoked(facts(issued=T0 + 61))


def test_scope_domain_and_app_credential_events() -> None:
    dom = facts(project_id=None, scope_domain_id="d1")
    assert RevocationList([event(user_id="u1", scope_domain_id="d1")]).revoked(dom)
    assert not RevocationList([event(user_id="u1", project_id="p1")]).revoked(dom)
    cred = facts(app_cred_id="c1")
    assert RevocationList([event(app_cred_id="c1")]).revoked(cred)
    assert not RevocationList([event(app_cred_id="c2")]).revoked(cred)


def test_the_events_are_read_again_only_when_the_table_changes(
        api: Api, identity: Identity) -> None:
    """Validation reads a fingerprint of the event table, not the events, while
    nothing changed; a new event (from this process or another one) is seen at once."""
    tok = api.member("rv-cache", password=PW)["token"]
    works(api, tok)
    loads = identity.revocations.loads
    for _ in range(5):
        works(api, tok)
    assert identity.revocations.loads == loads
    # An event written behind the cache's back (as another worker would) is seen.
    user_id = identity.validate(tok).user.id
    with identity.db.session() as s:
        identity.revoke(s, user_id=user_id)
    refused(api, tok)
    assert identity.revocations.loads == loads + 1


def test_events_expire_with_the_longest_token_lifetime(identity: Identity) -> None:
    with identity.db.session() as s:
        identity.revoke(s, user_id="gone")
    with identity.db.session() as s:
        assert identity.prune_revocations(s) == 0  # still young
    old = datetime(2000, 1, 1)
    with identity.db.session() as s:
        from stratus.identity import models as m
        s.add(m.RevocationEvent(user_id="old", issued_before=old, revoked_at=old))
    with identity.db.session() as s:
        assert identity.prune_revocations(s) == 1
    with pytest.raises(ValueError, match="at least one attribute"), identity.db.session() as s:
        identity.revoke(s)


def test_dropping_an_inference_rule_revokes_tokens_of_the_prior_role(api: Api) -> None:
    prior = api.create("role", name="rv-prior")
    implied = api.create("role", name="rv-implied")
    assert api.call("PUT", f"/v3/roles/{prior['id']}/implies/{implied['id']}"
                    ).status_code in (200, 201)
    alice = api.member("rv-alice", password=PW, role="rv-prior")
    old = alice["token"]
    works(api, old)
    rule = f"/v3/roles/{prior['id']}/implies/{implied['id']}"
    assert api.call("DELETE", rule).status_code == 204
    refused(api, old)
    api.call("PUT", rule)
    refused(api, old)
    works(api, api.token("rv-alice", PW, "rv-alice"))


@pytest.mark.parametrize("case", sorted(CASES))
def test_revocation_matrix_in_process(api: Api, case: str) -> None:
    CASES[case](api, "u" + str(sorted(CASES).index(case)))


def test_an_event_committed_out_of_id_order_is_seen(identity: Identity) -> None:
    """PostgreSQL may commit a lower id after a higher one, in a transaction whose prune
    removed as many rows as it added: the fingerprint must still move."""
    from stratus.identity import models as m

    t = datetime(2030, 1, 1)
    with identity.db.session() as s:
        for eid in (5, 10):
            s.add(m.RevocationEvent(id=eid, user_id=f"x{eid}", issued_before=t, revoked_at=t))
    with identity.db.session() as s:
        before = identity.revocations.fingerprint(s)
        assert not identity.revocations.current(s).revoked(facts(user_id="late", issued=0))
    with identity.db.session() as s:
        s.add(m.RevocationEvent(id=7, user_id="late", issued_before=t, revoked_at=t))
        s.delete(s.get(m.RevocationEvent, 5))
    with identity.db.session() as s:
        assert identity.revocations.fingerprint(s) != before
        assert identity.revocations.current(s).revoked(facts(user_id="late", issued=0))
