"""stratus.common.longpoll (the watch both APIs' long-polls wait on) and its client side,
ApiClient.long_poll: waiters share one read, wake on a change, time out, and nothing is
read while nobody waits."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

import compute_api
import network_api
from stratus.common import longpoll
from stratus.common.clients import DRAINING_HEADER, ApiClient, ServiceError
from stratus.common.longpoll import GenerationWatch, KeyedWatch
from stratus.compute import agents

pytestmark = pytest.mark.unit

INTERVAL = 0.05


class Counters:
    """Counters by key, and every read the watch made of them (from its worker thread)."""

    def __init__(self, **values: int) -> None:
        self.values = dict(values)
        self.reads: list[frozenset[str]] = []
        self.lock = threading.Lock()
        self.fail: Exception | None = None

    def read(self, keys: frozenset[str]) -> Mapping[str, int]:
        with self.lock:
            self.reads.append(keys)
            if self.fail is not None:
                raise self.fail
            return {k: v for k, v in self.values.items() if k in keys}


def test_every_waiter_of_the_process_shares_one_read_per_interval() -> None:
    counters = Counters(cmp1=3, cmp2=7)
    watch = KeyedWatch(counters.read, INTERVAL)

    async def main() -> list[int | None]:
        waiters = [watch.wait("cmp1", 3, 0.3) for _ in range(6)]
        waiters += [watch.wait("cmp2", 7, 0.3) for _ in range(6)]
        return await asyncio.gather(*waiters)

    started = time.monotonic()
    answers = asyncio.run(main())
    assert answers == [3] * 6 + [7] * 6  # no change: each gets its own since back
    assert 0.3 <= time.monotonic() - started < 1.0
    # Twelve waiters for 0.3 s at 0.05 s: about seven reads, each of both keys at once.
    assert 2 <= len(counters.reads) <= 9, counters.reads
    assert counters.reads[0] == {"cmp1", "cmp2"}
    assert watch.reads == len(counters.reads)


def test_a_change_wakes_only_the_waiters_of_its_key_within_an_interval() -> None:
    counters = Counters(cmp1=3, cmp2=7)
    watch = KeyedWatch(counters.read, INTERVAL)
    woke: dict[str, float] = {}

    async def waiter(key: str, since: int, timeout: float) -> int | None:
        value = await watch.wait(key, since, timeout)
        woke[key] = time.monotonic()
        return value

    async def main() -> tuple[int | None, int | None, float]:
        first = asyncio.ensure_future(waiter("cmp1", 3, 5.0))
        other = asyncio.ensure_future(waiter("cmp2", 7, 0.5))
        await asyncio.sleep(0.2)
        with counters.lock:
            counters.values["cmp1"] = 4
        bumped = time.monotonic()
        return await first, await other, bumped

    first, other, bumped = asyncio.run(main())
    assert first == 4 and other == 7
    assert woke["cmp1"] - bumped < INTERVAL + 0.2  # the next read, not the timeout
    assert woke["cmp2"] - bumped > 0.2  # cmp2 did not move: it waited its 0.5 s out


def test_a_value_already_past_since_or_missing_answers_at_once() -> None:
    counters = Counters(cmp1=9)
    watch = KeyedWatch(counters.read, INTERVAL)

    async def main() -> tuple[int | None, int | None, int | None]:
        return (await watch.wait("cmp1", 4, 30.0), await watch.wait("gone", 0, 30.0),
                await watch.wait("cmp1", 9, 0.0))

    started = time.monotonic()
    assert asyncio.run(main()) == (9, None, 9)  # None: the key has no counter (a 404)
    assert time.monotonic() - started < 1.0


def test_a_cached_value_older_than_since_is_read_again_not_taken_for_a_change() -> None:
    counters = Counters(cmp1=5)
    watch = KeyedWatch(counters.read, 10.0)  # a long interval: only kicked reads happen

    async def main() -> tuple[int | None, int | None]:
        holder = asyncio.ensure_future(watch.wait("cmp1", 5, 0.6))  # keeps the cache (5)
        await asyncio.sleep(0.1)
        with counters.lock:
            counters.values["cmp1"] = 6
        # This caller read 6 elsewhere: the cached 5 is older, so the watch reads again
        # and, 6 being what the caller holds, waits.
        newer = await watch.wait("cmp1", 6, 0.3)
        return newer, await holder

    newer, held = asyncio.run(main())
    assert newer == 6
    assert held == 6  # the second read (kicked by the newer waiter) showed the change
    assert len(counters.reads) == 2


def test_nothing_is_read_while_nobody_waits() -> None:
    counters = Counters(cmp1=1)
    watch = KeyedWatch(counters.read, INTERVAL)

    async def main() -> None:
        await asyncio.sleep(5 * INTERVAL)
        assert counters.reads == []  # made, never waited on: no reads
        await watch.wait("cmp1", 1, 2 * INTERVAL)
        done = len(counters.reads)
        assert watch.waiting() == 0
        await asyncio.sleep(6 * INTERVAL)
        assert len(counters.reads) == done  # the poller stopped with its last waiter
        assert watch._loops == {}  # and left nothing behind

    asyncio.run(main())
    assert counters.reads


def test_a_failed_read_fails_the_waiters_and_the_next_wait_reads_again() -> None:
    counters = Counters(cmp1=1)
    counters.fail = RuntimeError("database unavailable")
    watch = KeyedWatch(counters.read, INTERVAL)

    async def main() -> None:
        results = await asyncio.gather(watch.wait("cmp1", 1, 1.0), watch.wait("cmp1", 1, 1.0),
                                       return_exceptions=True)
        assert all(isinstance(r, RuntimeError) for r in results)
        counters.fail = None
        assert await watch.wait("cmp1", 0, 1.0) == 1

    asyncio.run(main())


def test_waits_in_several_event_loops_at_once() -> None:
    # The test clients run each request in its own event loop, in its own thread.
    counters = Counters(cmp1=1)
    watch = KeyedWatch(counters.read, INTERVAL)
    got: list[int | None] = []

    def wait() -> None:
        got.append(asyncio.run(watch.wait("cmp1", 1, 5.0)))

    threads = [threading.Thread(target=wait) for _ in range(3)]
    for t in threads:
        t.start()
    time.sleep(0.2)
    with counters.lock:
        counters.values["cmp1"] = 2
    for t in threads:
        t.join(timeout=5)
    assert got == [2, 2, 2]


def test_the_generation_watch_is_one_counter() -> None:
    value = {"generation": 10}
    watch = GenerationWatch(lambda: value["generation"], INTERVAL)

    async def main() -> tuple[int, int, int]:
        unchanged = await watch.wait(10, 0.15)
        older = await watch.wait(3, 30.0)
        pending = asyncio.ensure_future(watch.wait(10, 30.0))
        await asyncio.sleep(0.1)
        value["generation"] = 11
        return unchanged, older, await pending

    assert asyncio.run(main()) == (10, 10, 11)
    assert watch.reads >= 2


def client_seeing(seen: list[httpx.Request], timeouts: list[Any]) -> ApiClient:
    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        timeouts.append(request.extensions.get("timeout"))
        return httpx.Response(200, json={"generation": 4})

    client = ApiClient("http://api.test/v2.0", None, timeout=10.0)
    client._http = httpx.Client(transport=httpx.MockTransport(answer), timeout=10.0)
    return client


def test_the_client_long_poll_sends_since_and_wait_and_keeps_the_query() -> None:
    seen: list[httpx.Request] = []
    timeouts: list[Any] = []
    client = client_seeing(seen, timeouts)
    resp = client.long_poll("http://api.test/v2.0/stratus/host-state?host=cmp1", 3, 90)
    assert resp.json() == {"generation": 4}
    assert seen[0].url.params.multi_items() == [("host", "cmp1"), ("since", "3"),
                                                ("wait", "30")]  # cut to 30 s
    assert timeouts[0]["read"] == 40.0  # the wait plus the client's own timeout
    client.long_poll("stratus/compute-hosts/cmp1/servers", 7, 2.5)
    assert str(seen[1].url) == ("http://api.test/v2.0/stratus/compute-hosts/cmp1/servers"
                                "?since=7&wait=2.5")
    # Without since, or with no wait: a plain GET.
    client.long_poll("stratus/compute-hosts/cmp1/servers", None, 30)
    client.long_poll("stratus/compute-hosts/cmp1/servers", 7, 0)
    assert [r.url.query for r in seen[2:]] == [b"", b""]
    assert timeouts[2]["read"] == 10.0


# --- restarts: a draining process, and its clients -----------------------------------------
def test_drain_answers_every_waiter_at_once_and_every_later_one() -> None:
    counters = Counters(cmp1=3)
    watch = KeyedWatch(counters.read, INTERVAL)
    single = GenerationWatch(lambda: 10, INTERVAL)

    async def main() -> tuple[list[int | None], int | None, int]:
        waiting = [asyncio.ensure_future(watch.wait("cmp1", 3, 30.0)) for _ in range(3)]
        waiting.append(asyncio.ensure_future(single.wait(10, 30.0)))
        await asyncio.sleep(0.1)
        assert watch.waiting() == 3
        threading.Thread(target=longpoll.drain).start()  # from another thread (a signal)
        # Undrained, they would wait their 30 s: wait_for fails the test instead.
        answers = await asyncio.wait_for(asyncio.gather(*waiting), 20)
        later = await watch.wait("cmp1", 2, 30.0)  # would be a change: still "nothing"
        return answers, later, await single.wait(9, 30.0)

    try:
        answers, later, single_later = asyncio.run(main())
    finally:
        longpoll.undrain()
    assert answers == [3, 3, 3, 10]  # each its own since: nothing changed
    assert (later, single_later) == (2, 9)
    assert watch.waiting() == 0


def scripted_client(answers: list[Any], seen: list[httpx.Request]) -> ApiClient:
    """An ApiClient whose calls get ``answers`` in turn: a Response, or an exception
    raised as the transport would (no answer)."""
    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        nxt = answers.pop(0)
        if isinstance(nxt, Exception):
            raise nxt
        return nxt

    client = ApiClient("http://api.test/v2.0", None, timeout=10.0)
    client._http = httpx.Client(transport=httpx.MockTransport(answer), timeout=10.0)
    return client


def test_the_client_polls_again_across_a_restart_with_the_same_since() -> None:
    seen: list[httpx.Request] = []
    client = scripted_client([
        httpx.Response(200, json={"generation": 3}, headers={DRAINING_HEADER: "true"}),
        httpx.ConnectError("Connection refused"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        httpx.Response(200, json={"generation": 4}),
    ], seen)
    resp = client.long_poll("stratus/compute-hosts/cmp1/servers", 3, 20)
    assert resp.json() == {"generation": 4}  # the new process's answer
    assert [r.url.params["since"] for r in seen] == ["3"] * 4
    waits = [float(r.url.params["wait"]) for r in seen]
    assert waits[0] == 20 and all(0 < w < 20 for w in waits[1:])  # the rest of the wait


def test_the_client_gives_up_when_the_wait_is_over() -> None:
    seen: list[httpx.Request] = []
    client = scripted_client([httpx.ConnectError("Connection refused")] * 50, seen)
    with pytest.raises(ServiceError) as err:
        client.long_poll("stratus/compute-hosts/cmp1/servers", 3, 0.3)
    assert err.value.temporary and err.value.status == 0
    assert 2 <= len(seen) <= 6  # a short backoff, not a burst
    # An answer with a status is the API's word: no retry.
    seen.clear()
    client = scripted_client([httpx.Response(404, json={"message": "no host"})], seen)
    with pytest.raises(ServiceError) as err:
        client.long_poll("stratus/compute-hosts/cmp1/servers", 3, 20)
    assert err.value.status == 404 and len(seen) == 1
    # A draining answer when no time is left comes back as it is.
    client = scripted_client([httpx.Response(200, json={"generation": 3},
                                             headers={DRAINING_HEADER: "true"})], seen)
    assert client.long_poll("x", 3, 0.01).json() == {"generation": 3}


def test_a_call_waits_out_a_restart_of_the_service_it_calls() -> None:
    seen: list[httpx.Request] = []
    refused = httpx.ConnectError("Connection refused")
    client = scripted_client([refused, refused, httpx.Response(201, json={"id": "p1"})], seen)
    assert client.post("v2.0/ports", json={"port": {}}) == {"id": "p1"}  # nothing was sent
    assert [r.method for r in seen] == ["POST"] * 3
    # A kept-alive connection the old process closed unanswered: a GET is sent again once,
    # a POST is not (it may have been done).
    closed = httpx.RemoteProtocolError("Server disconnected without sending a response.")
    client = scripted_client([closed, httpx.Response(200, json={"ok": 1})], seen)
    assert client.get("v2.0/ports") == {"ok": 1}
    client = scripted_client([closed], seen)
    with pytest.raises(ServiceError, match="unreachable"):
        client.post("v2.0/ports", json={})
    # No hand-over time: unreachable at once, as before.
    seen.clear()
    client = scripted_client([refused, refused], seen)
    client.handover = 0
    with pytest.raises(ServiceError, match="unreachable") as err:
        client.get("v2.0/ports")
    assert err.value.temporary and len(seen) == 1


# --- the two APIs over it ------------------------------------------------------------------
def long_polls(call: Callable[[str], Any], paths: list[str]) -> list[threading.Thread]:
    threads = [threading.Thread(target=call, args=(p,)) for p in paths]
    for t in threads:
        t.start()
    return threads


def test_compute_long_polls_of_several_hosts_share_one_read_and_wake_their_own(
        tmp_path: Path) -> None:
    with compute_api.in_process(tmp_path) as api:
        api.flavor(id="1")
        gens = {h: api.host(h)["generation"] for h in ("cmp1", "cmp2", "cmp3")}
        watch = agents.watch(api.core)
        assert agents.watch(api.core) is watch  # one per service (core) in a process
        answers: dict[str, dict[str, Any]] = {}

        def poll(host: str) -> None:
            answers[host] = api.ok("GET", f"/v2.1/stratus/compute-hosts/{host}/servers"
                                          f"?wait=1.5&since={gens[host]}")

        started = time.monotonic()
        threads = long_polls(poll, ["cmp1", "cmp2", "cmp3"])
        time.sleep(0.5)
        reads = watch.reads
        api.ok("PUT", "/v2.1/stratus/compute-hosts/cmp2", json={"host": {"vcpus": 8}})
        for t in threads:
            t.join(timeout=10)
        assert answers["cmp2"]["generation"] > gens["cmp2"]
        assert answers["cmp1"]["generation"] == gens["cmp1"]
        assert time.monotonic() - started >= 1.5  # the others waited their time out
        # Three hosts waited 0.5 s: a few reads of all three (not one per host per 0.25 s).
        assert 1 <= reads <= 6, reads
        assert agents.generations(api.core, ["cmp1", "cmp3", "nope"]) == {
            "cmp1": gens["cmp1"], "cmp3": gens["cmp3"]}
        # A host that never sent a heartbeat: 404 at once, with or without a wait.
        started = time.monotonic()
        for query in ("", "?wait=30&since=0"):
            resp = api.call("GET", f"/v2.1/stratus/compute-hosts/nope/servers{query}")
            assert resp.status_code == 404
            assert "send a heartbeat first" in resp.json()["itemNotFound"]["message"]
        assert time.monotonic() - started < 5


def test_network_long_polls_wait_on_one_keyed_watch(tmp_path: Path) -> None:
    with network_api.in_process(tmp_path) as api:
        assert api.core is not None
        watch = api.core.hosts.watch
        assert isinstance(watch, KeyedWatch)  # per-host generations, every host in one read
        since = api.ok("GET", "/v2.0/stratus-agent/hosts/cmp1")["generation"]
        answers: list[int] = []

        def poll(path: str) -> None:
            answers.append(api.ok("GET", f"{path}?since={since}&wait=0.6")["generation"])

        threads = long_polls(poll, [f"/v2.0/stratus-agent/hosts/cmp{i}" for i in range(4)])
        for t in threads:
            t.join(timeout=10)
        assert answers == [since] * 4
        assert 1 <= watch.reads <= 8, watch.reads  # not one per waiter (4 x 3 reads)


def test_a_poke_reads_at_once_instead_of_at_the_end_of_the_interval() -> None:
    """Issue 17: a counter committed in this process pokes the watches (longpoll.poke),
    so a waiter wakes in one read, not up to an interval later."""
    counters = Counters(cmp1=3)
    watch = KeyedWatch(counters.read, 10.0)  # no periodic read during the test

    async def main(poke: bool, since: int) -> tuple[int | None, float]:
        task = asyncio.ensure_future(watch.wait("cmp1", since, 1.5))
        await asyncio.sleep(0.2)  # the first read is done
        with counters.lock:
            counters.values["cmp1"] += 1
        began = time.monotonic()
        if poke:  # from another thread, as a request's worker thread commits
            threading.Thread(target=longpoll.poke).start()
        value = await task
        return value, time.monotonic() - began

    value, took = asyncio.run(main(poke=False, since=3))
    assert value == 3 and took >= 1.0  # unpoked: the change is not read before the timeout
    value, took = asyncio.run(main(poke=True, since=4))
    assert value == 5 and took < 1.0
    assert len(counters.reads) == 3  # one read per wait, and one for the poke


def test_poke_if_noted_pokes_once_and_only_after_a_noted_change(
        monkeypatch: pytest.MonkeyPatch) -> None:
    pokes: list[int] = []
    monkeypatch.setattr(longpoll, "poke", lambda: pokes.append(1))

    class Session:
        info: dict[str, Any] = {}

    s = Session()
    s.info = {}
    longpoll.poke_if_noted(s)
    assert pokes == []
    longpoll.note_change(s)
    longpoll.poke_if_noted(s)
    longpoll.poke_if_noted(s)  # the note is spent
    assert pokes == [1]
    assert s.info == {}


def test_a_new_assignment_wakes_the_agents_long_poll_without_the_interval(
        tmp_path: Path) -> None:
    """The compute API pokes its watch after a commit that bumps a host's generation."""
    with compute_api.in_process(tmp_path) as api:
        api.flavor(id="1")
        since = api.host("cmp1")["generation"]
        watch = agents.watch(api.core)
        watch.interval = 10.0
        answers: list[dict[str, Any]] = []
        threads = long_polls(lambda path: answers.append(api.ok("GET", path)), [
            f"/v2.1/stratus/compute-hosts/cmp1/servers?wait=8&since={since}"])
        deadline = time.monotonic() + 20
        while watch.waiting() == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.1)
        changed = time.monotonic()
        api.ok("PUT", "/v2.1/stratus/compute-hosts/cmp1", json={"host": {"vcpus": 8}})
        threads[0].join(timeout=10)
        assert answers and answers[0]["generation"] > since
        assert time.monotonic() - changed < 3.0  # woken, not the 8 s wait running out
