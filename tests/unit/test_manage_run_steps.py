"""stratus-manage run-steps: a service's stratus-manage steps in one process (the roles run
each service's schema, keys and catalog steps with it)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stratus import manage

pytestmark = pytest.mark.unit


@pytest.fixture
def ring_conf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    conf = tmp_path / "stratus.conf"
    conf.write_text(f"[object]\nring_file = {tmp_path}/ring.json\n")
    monkeypatch.setenv("STRATUS_CONFIG_FILE", str(conf))
    return tmp_path


def _build(tmp_path: Path, devices: int) -> list[str]:
    args = ["ring", "build", "--part-power", "4", "--replicas", "3"]
    for zone in range(1, devices + 1):
        (tmp_path / f"d{zone}").mkdir(exist_ok=True)
        args += ["--device", f"127.0.0.1:{zone}:{tmp_path}/d{zone}"]
    return args


def test_steps_run_in_order_and_report_any_change(
        ring_conf: Path, capsys: pytest.CaptureFixture[str]) -> None:
    build = _build(ring_conf, 3)
    steps = ["--step", json.dumps(build), "--step", json.dumps(["ring", "show"])]
    assert manage.main(["run-steps", *steps]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["changed"] is True
    assert [s["changed"] for s in out["steps"]] == [True, False]
    # the second step saw what the first one built
    assert [d["partitions"] for d in out["steps"][1]["devices"]] == [16, 16, 16]
    # nothing left to do: the same steps again change nothing
    assert manage.main(["run-steps", *steps]) == 0
    assert json.loads(capsys.readouterr().out)["changed"] is False


def test_a_failing_step_stops_the_rest_and_is_named(
        ring_conf: Path, capsys: pytest.CaptureFixture[str]) -> None:
    steps = ["--step", json.dumps(["ring", "build", "--device", "bad"]),
             "--step", json.dumps(_build(ring_conf, 3))]
    assert manage.main(["run-steps", *steps]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "step 1 (ring)" in captured.err
    assert not (ring_conf / "ring.json").exists(), "the step after the failure ran"


def test_a_step_that_refuses_is_named(ring_conf: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("STRATUS_SERVICE_PASSWORD", raising=False)
    step = ["service-user", "ensure", "--name", "stratus-x"]
    assert manage.main(["run-steps", "--step", json.dumps(step)]) == 1
    err = capsys.readouterr().err
    assert "step 1 (service-user)" in err and "STRATUS_SERVICE_PASSWORD" in err


@pytest.mark.parametrize(("step", "says"), [
    ("db sync identity", "is not JSON"),
    ('{"db": "sync"}', "non-empty JSON list of strings"),
    ("[]", "non-empty JSON list of strings"),
    ('["db", true]', "non-empty JSON list of strings"),
    ('["run-steps", "--step", "[]"]', "cannot be a step of run-steps"),
    ('["no-such-command"]', "not a valid command"),
])
def test_bad_steps_are_refused_before_any_runs(
        ring_conf: Path, capsys: pytest.CaptureFixture[str], step: str, says: str) -> None:
    first = json.dumps(_build(ring_conf, 3))
    assert manage.main(["run-steps", "--step", first, "--step", step]) == 1
    assert says in capsys.readouterr().err
    assert not (ring_conf / "ring.json").exists(), "a step ran before the bad one was refused"


def test_service_users_with_their_own_passwords_in_one_process(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    # a role folds its service users into its service's steps: each step names the
    # environment variable that holds its user's password
    conf = tmp_path / "stratus.conf"
    conf.write_text(f"[identity]\ndatabase_url = sqlite:///{tmp_path}/identity.sqlite\n"
                    f"fernet_key_repository = {tmp_path}/keys\n")
    monkeypatch.setenv("STRATUS_CONFIG_FILE", str(conf))
    monkeypatch.setenv("PW_A", "secret-a")
    monkeypatch.setenv("PW_B", "secret-b")
    monkeypatch.delenv("STRATUS_SERVICE_PASSWORD", raising=False)
    steps = ["--step", json.dumps(["db", "sync", "identity"])]
    for name, variable in (("stratus-a", "PW_A"), ("stratus-b", "PW_B")):
        steps += ["--step", json.dumps(["service-user", "ensure", "--name", name,
                                        "--password-env", variable])]
    assert manage.main(["run-steps", *steps]) == 0
    assert json.loads(capsys.readouterr().out)["changed"] is True
    assert manage.main(["run-steps", *steps]) == 0
    assert json.loads(capsys.readouterr().out)["changed"] is False
    # each user got its own password: a changed one is a change again
    monkeypatch.setenv("PW_B", "secret-b2")
    assert manage.main(["run-steps", *steps]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [s["changed"] for s in out["steps"]] == [False, False, True]


@pytest.mark.parametrize(("variable", "says"), [
    ("PW_EMPTY", "set PW_EMPTY to the user's password"),
    ("1BAD", "is not an environment variable name"),
])
def test_a_service_user_step_names_its_password_variable(
        ring_conf: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], variable: str, says: str) -> None:
    monkeypatch.setenv("PW_EMPTY", "")
    step = ["service-user", "ensure", "--name", "stratus-x", "--password-env", variable]
    assert manage.main(["run-steps", "--step", json.dumps(step)]) == 1
    err = capsys.readouterr().err
    assert "step 1 (service-user)" in err and says in err
