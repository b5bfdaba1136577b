"""What every request of every service pays for besides its own work (issue 17): the
access-log line (formatted by LineFormatter, without the source and thread look-ups), the
request id, and the objects of start-up kept out of the garbage collector's full passes
in a service's worker process."""

from __future__ import annotations

import gc
import io
import logging
import re
import uuid
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from stratus.common import app as app_module
from stratus.common import handover
from stratus.common.app import REQUEST_ID_RE, create_app, new_request_id
from stratus.common.errors import nova_error
from stratus.common.logs import SERVICE_FORMAT, LineFormatter, setup_service_logging

pytestmark = pytest.mark.unit


def _record(created: float, msg: str = "s8h line") -> logging.LogRecord:
    record = logging.LogRecord("s8h.test", logging.INFO, __file__, 1, msg, None, None)
    record.created = created
    record.msecs = (created - int(created)) * 1000
    return record


def test_line_formatter_writes_what_the_standard_formatter_writes() -> None:
    ours, standard = LineFormatter(SERVICE_FORMAT), logging.Formatter(SERVICE_FORMAT)
    # within one second, across a second, a minute and a day; a repeat of an old second
    for created in (1796632801.0, 1796632801.999, 1796632802.5, 1796632859.12,
                    1796716799.9991, 1796716800.001, 1796632801.25):
        record = _record(created)
        assert ours.format(record) == standard.format(record)


def test_line_formatter_keeps_a_given_date_format() -> None:
    record = _record(1796632801.5)
    assert LineFormatter("%(asctime)s", "%H:%M").format(record) == \
        logging.Formatter("%(asctime)s", "%H:%M").format(record)


@pytest.fixture
def bare_root() -> Iterator[logging.Logger]:
    """The root logger, restored afterwards with logging's module flags; a test empties
    its handlers (pytest's own among them) so that basicConfig acts."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, logging._srcfile, logging.logThreads,
             logging.logMultiprocessing)
    yield root
    for handler in root.handlers:
        handler.close()
    root.handlers, level = saved[0], saved[1]
    root.setLevel(level)
    logging._srcfile, logging.logThreads, logging.logMultiprocessing = saved[2:]


def test_service_logging_writes_the_line_without_looking_up_the_caller(
        bare_root: logging.Logger) -> None:
    out = io.StringIO()
    bare_root.handlers = []
    setup_service_logging(False, stream=out)
    logging.getLogger("s8h.test").info("hello %s", "there")
    logging.getLogger("s8h.test").debug("not at INFO")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} \d+ INFO s8h\.test "
                        r"hello there\n", out.getvalue()), out.getvalue()
    record = bare_root.makeRecord("s8h.test", logging.INFO, "f", 1, "m", (), None)
    assert record.threadName is None and record.processName is None
    assert logging._srcfile is None  # findCaller is not walked for each record


def test_service_logging_with_debug(bare_root: logging.Logger) -> None:
    out = io.StringIO()
    bare_root.handlers = []
    setup_service_logging(True, stream=out)
    logging.getLogger("s8h.test").debug("shown")
    assert out.getvalue().endswith(" DEBUG s8h.test shown\n")


def test_request_ids_are_random_version_4_uuids_the_middleware_accepts() -> None:
    ids = {new_request_id() for _ in range(2000)}
    assert len(ids) == 2000
    for rid in list(ids)[:200]:
        assert REQUEST_ID_RE.match(rid), rid
        value = uuid.UUID(rid.removeprefix("req-"))
        assert value.version == 4 and value.variant == uuid.RFC_4122
        assert f"req-{value}" == rid


def test_an_answer_carries_a_new_id_or_the_callers_well_formed_one() -> None:
    with TestClient(create_app("s8h", [], nova_error)) as client:
        first = client.get("/healthcheck").headers["x-openstack-request-id"]
        second = client.get("/healthcheck").headers["x-openstack-request-id"]
        assert REQUEST_ID_RE.match(first) and first != second
        given = "req-0123abcd-0000-4000-8000-000000000001"
        echoed = client.get("/healthcheck", headers={"x-openstack-request-id": given})
        assert echoed.headers["x-openstack-request-id"] == given
        bad = client.get("/healthcheck", headers={"x-openstack-request-id": "req-x; drop"})
        assert bad.headers["x-openstack-request-id"] != "req-x; drop"


@pytest.fixture
def unfreeze() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()  # this test process keeps collecting everything


def test_a_service_worker_freezes_its_start_up_objects(
        unfreeze: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(handover, "under_parent", lambda: True)
    monkeypatch.setattr(handover, "notify_ready", lambda: True)
    assert gc.get_freeze_count() == 0
    with TestClient(create_app("s8h", [], nova_error)) as client:
        frozen = gc.get_freeze_count()
        assert frozen > 1000  # the modules, classes and configuration of start-up
        assert client.get("/healthcheck").status_code == 200
        # garbage made afterwards is collected as usual
        cycle: list[object] = []
        cycle.append(cycle)
        del cycle
        assert gc.collect() >= 1


def test_an_app_outside_a_service_worker_freezes_nothing(
        unfreeze: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(handover, "under_parent", lambda: False)
    calls: list[int] = []
    monkeypatch.setattr(app_module, "freeze_startup_objects", lambda: calls.append(1))
    with TestClient(create_app("s8h", [], nova_error)) as client:
        assert client.get("/healthcheck").status_code == 200
    assert calls == [] and gc.get_freeze_count() == 0
