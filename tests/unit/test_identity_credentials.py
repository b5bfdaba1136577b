"""The identity API's /v3/credentials and /v3/policies in-process (SQLite)."""

from __future__ import annotations

import hashlib
import json

import pytest

from identity_api import Api

pytestmark = pytest.mark.unit


def test_ec2_credential_lifecycle_as_keystone_shapes_it(api: Api) -> None:
    alice = api.member("alice")
    uid, pid = alice["user"]["id"], alice["project"]["id"]
    blob = json.dumps({"access": "AK1", "secret": "s3cr3t"})
    resp = api.call("POST", "/v3/credentials", json={"credential": {
        "user_id": uid, "project_id": pid, "type": "ec2", "blob": blob}})
    assert resp.status_code == 201, resp.text
    cred = resp.json()["credential"]
    assert cred["id"] == hashlib.sha256(b"AK1").hexdigest()
    assert {k: cred[k] for k in ("user_id", "project_id", "type", "blob")} == {
        "user_id": uid, "project_id": pid, "type": "ec2", "blob": blob}
    assert cred["links"]["self"].endswith(f"/v3/credentials/{cred['id']}")
    # The same access key again is a conflict.
    again = api.call("POST", "/v3/credentials", json={"credential": {
        "user_id": uid, "project_id": pid, "type": "ec2", "blob": blob}})
    assert again.status_code == 409
    shown = api.call("GET", f"/v3/credentials/{cred['id']}").json()["credential"]
    assert shown == cred
    # Update: new secret and project keep the id; a new access key is refused.
    other = api.create("project", name="other")
    blob2 = json.dumps({"access": "AK1", "secret": "new"})
    upd = api.call("PATCH", f"/v3/credentials/{cred['id']}", json={"credential": {
        "blob": blob2, "project_id": other["id"]}})
    assert upd.status_code == 200, upd.text
    assert upd.json()["credential"]["blob"] == blob2
    assert upd.json()["credential"]["project_id"] == other["id"]
    # A new access key is kept under the same id (as Keystone and Tempest expect),
    # but an ec2 blob must still hold one.
    rekey = api.call("PATCH", f"/v3/credentials/{cred['id']}", json={"credential": {
        "blob": json.dumps({"access": "AK2", "secret": "x"})}})
    assert rekey.status_code == 200 and rekey.json()["credential"]["id"] == cred["id"]
    bad = api.call("PATCH", f"/v3/credentials/{cred['id']}", json={"credential": {
        "blob": "not json"}})
    assert bad.status_code == 400 and "access" in bad.json()["error"]["message"]
    assert api.call("DELETE", f"/v3/credentials/{cred['id']}").status_code == 204
    assert api.call("GET", f"/v3/credentials/{cred['id']}").status_code == 404


def test_credential_types_filters_and_validation(api: Api) -> None:
    bob = api.member("bob")
    uid, pid = bob["user"]["id"], bob["project"]["id"]
    for ctype, blob in (("totp", "GEZDGNBVGY3TQOJQ"), ("cert", "-----BEGIN CERT-----")):
        resp = api.call("POST", "/v3/credentials", json={"credential": {
            "user_id": uid, "type": ctype, "blob": blob}})
        assert resp.status_code == 201, resp.text
        assert resp.json()["credential"]["project_id"] is None
    listed = api.call("GET", "/v3/credentials", params={"user_id": uid}).json()
    assert sorted(c["type"] for c in listed["credentials"]) == ["cert", "totp"]
    totp = api.call("GET", "/v3/credentials", params={"type": "totp"}).json()["credentials"]
    assert [c["blob"] for c in totp] == ["GEZDGNBVGY3TQOJQ"]
    # ec2 needs a project and a JSON blob with an access key.
    no_project = api.call("POST", "/v3/credentials", json={"credential": {
        "user_id": uid, "type": "ec2", "blob": json.dumps({"access": "a", "secret": "b"})}})
    assert no_project.status_code == 400 and "project_id" in no_project.text
    not_json = api.call("POST", "/v3/credentials", json={"credential": {
        "user_id": uid, "project_id": pid, "type": "ec2", "blob": "nope"}})
    assert not_json.status_code == 400 and "access" in not_json.text
    missing = api.call("POST", "/v3/credentials", json={"credential": {"user_id": uid}})
    assert missing.status_code == 400 and "type" in missing.text
    nobody = api.call("POST", "/v3/credentials", json={"credential": {
        "user_id": "nobody", "type": "totp", "blob": "x"}})
    assert nobody.status_code == 404


def test_credential_owner_rules(api: Api) -> None:
    carol, dave = api.member("carol"), api.member("dave")
    cid, did = carol["user"]["id"], dave["user"]["id"]
    # A user creates, lists and edits their own credentials...
    mine = api.call("POST", "/v3/credentials", carol["token"], json={"credential": {
        "user_id": cid, "type": "totp", "blob": "AAAA"}})
    assert mine.status_code == 201, mine.text
    cred_id = mine.json()["credential"]["id"]
    theirs = api.call("POST", "/v3/credentials", json={"credential": {
        "user_id": did, "type": "totp", "blob": "BBBB"}}).json()["credential"]
    listed = api.call("GET", "/v3/credentials", carol["token"]).json()["credentials"]
    assert [c["id"] for c in listed] == [cred_id]
    assert api.call("GET", "/v3/credentials", carol["token"],
                    params={"user_id": did}).json()["credentials"] == []
    assert api.call("PATCH", f"/v3/credentials/{cred_id}", carol["token"],
                    json={"credential": {"blob": "CCCC"}}).status_code == 200
    # ... but never another user's, nor for another user.
    for method in ("GET", "DELETE"):
        assert api.call(method, f"/v3/credentials/{theirs['id']}",
                        carol["token"]).status_code == 403
    assert api.call("POST", "/v3/credentials", carol["token"], json={"credential": {
        "user_id": did, "type": "totp", "blob": "x"}}).status_code == 403
    assert api.call("PATCH", f"/v3/credentials/{cred_id}", carol["token"],
                    json={"credential": {"user_id": did}}).status_code == 403
    # Deleting the user deletes its credentials.
    assert api.call("DELETE", f"/v3/users/{did}").status_code == 204
    assert api.call("GET", f"/v3/credentials/{theirs['id']}").status_code == 404


def test_policies_crud_admin_only(api: Api) -> None:
    resp = api.call("POST", "/v3/policies", json={"policy": {
        "blob": '{"default": ""}', "type": "application/json", "description": "d"}})
    assert resp.status_code == 201, resp.text
    pol = resp.json()["policy"]
    assert pol["type"] == "application/json" and pol["blob"] == '{"default": ""}'
    assert pol["description"] == "d"
    assert pol["links"]["self"].endswith(f"/v3/policies/{pol['id']}")
    assert [p["id"] for p in api.call("GET", "/v3/policies").json()["policies"]] == [pol["id"]]
    assert api.call("GET", "/v3/policies", params={"type": "text/x"}).json()["policies"] == []
    upd = api.call("PATCH", f"/v3/policies/{pol['id']}", json={"policy": {"type": "text/x"}})
    assert upd.status_code == 200 and upd.json()["policy"]["type"] == "text/x"
    assert api.call("GET", f"/v3/policies/{pol['id']}").json()["policy"]["type"] == "text/x"
    erin = api.member("erin")
    assert api.call("GET", "/v3/policies", erin["token"]).status_code == 403
    assert api.call("POST", "/v3/policies", json={"policy": {"type": "x"}}).status_code == 400
    assert api.call("DELETE", f"/v3/policies/{pol['id']}").status_code == 204
    assert api.call("GET", f"/v3/policies/{pol['id']}").status_code == 404


def test_os_ec2_credentials_of_a_user(api: Api) -> None:
    gus, hal = api.member("gus"), api.member("hal")
    uid, pid = gus["user"]["id"], gus["project"]["id"]
    base = f"/v3/users/{uid}/credentials/OS-EC2"
    made = api.call("POST", base, gus["token"], json={"tenant_id": pid})
    assert made.status_code == 201, made.text
    cred = made.json()["credential"]
    assert cred["user_id"] == uid and cred["tenant_id"] == pid
    assert cred["access"] and cred["secret"] and cred["trust_id"] is None
    assert cred["links"]["self"].endswith(f"{base}/{cred['access']}")
    listed = api.call("GET", base, gus["token"]).json()["credentials"]
    assert [c["access"] for c in listed] == [cred["access"]]
    assert api.call("GET", f"{base}/{cred['access']}", gus["token"]).json()[
        "credential"] == cred
    # The same key pair is an ec2 credential of /v3/credentials.
    generic = api.call("GET", "/v3/credentials", params={"user_id": uid}).json()["credentials"]
    assert [json.loads(c["blob"])["access"] for c in generic] == [cred["access"]]
    assert api.call("GET", base, hal["token"]).status_code == 403
    assert api.call("POST", base, json={}).status_code == 400
    assert api.call("DELETE", f"{base}/{cred['access']}", gus["token"]).status_code == 204
    assert api.call("GET", f"{base}/{cred['access']}").status_code == 404
