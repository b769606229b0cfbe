"""Namespace label lookup for admission: static file, live (kubernetes client) with a TTL cache."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from kubernetes.client.exceptions import ApiException

from kubestrata.admission.namespaces import (
    CombinedNamespaces,
    LiveNamespaces,
    NamespaceLookupError,
    StaticNamespaces,
)
from kubestrata.errors import InputError


class FakeCoreV1:
    def __init__(self, labels: dict[str, dict[str, str]], fail: Exception | None = None) -> None:
        self.labels, self.fail, self.calls = labels, fail, 0

    def read_namespace(self, name: str, _request_timeout: float) -> object:
        self.calls += 1
        if self.fail is not None:
            raise self.fail
        if name not in self.labels:
            raise ApiException(status=404, reason="Not Found")
        return SimpleNamespace(metadata=SimpleNamespace(labels=self.labels[name]))


def run(coro):
    return asyncio.run(coro)


def test_live_lookup_caches_and_handles_missing():
    api = FakeCoreV1({"team-a": {"pod-security.kubernetes.io/enforce": "baseline"}})
    live = LiveNamespaces(api=api, cache_ttl=60)
    assert run(live.labels("team-a")) == {
        "kubernetes.io/metadata.name": "team-a",
        "pod-security.kubernetes.io/enforce": "baseline",
    }
    run(live.labels("team-a"))
    assert api.calls == 1  # cached
    assert run(live.labels("gone")) == {"kubernetes.io/metadata.name": "gone"}


def test_live_lookup_errors_are_errors_not_empty_labels():
    live = LiveNamespaces(api=FakeCoreV1({}, fail=ApiException(status=403, reason="Forbidden")))
    with pytest.raises(NamespaceLookupError, match="API error 403"):
        run(live.labels("team-a"))
    live = LiveNamespaces(api=FakeCoreV1({}, fail=ConnectionRefusedError()))
    with pytest.raises(NamespaceLookupError, match="ConnectionRefusedError"):
        run(live.labels("team-a"))


def test_static_file_wins_over_live(tmp_path):
    f = tmp_path / "ns.yaml"
    f.write_text(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team-a\n  labels:\n"
        "    pod-security.kubernetes.io/enforce: restricted\n"
    )
    static = StaticNamespaces.from_file(f)
    api = FakeCoreV1({"team-a": {}, "team-b": {"x": "y"}})
    both = CombinedNamespaces(static, LiveNamespaces(api=api))
    assert run(both.labels("team-a"))["pod-security.kubernetes.io/enforce"] == "restricted"
    assert run(both.labels("team-b"))["x"] == "y"
    assert api.calls == 1


def test_bad_namespaces_file_names_the_problem(tmp_path):
    f = tmp_path / "ns.yaml"
    f.write_text("apiVersion: v1\nkind: Namespace\nmetadata: [\n")
    with pytest.raises(InputError, match="ns.yaml"):
        StaticNamespaces.from_file(f)


class SlowCoreV1(FakeCoreV1):
    def read_namespace(self, name: str, _request_timeout: float) -> object:
        import time

        time.sleep(0.2)  # an API server under load: every review in the burst arrives meanwhile
        return super().read_namespace(name, _request_timeout)


def test_live_lookup_one_get_in_flight_per_namespace_and_bounded_cache():
    api = SlowCoreV1({"team-a": {"x": "1"}, "team-b": {}})
    live = LiveNamespaces(api=api, cache_ttl=60, max_entries=3)

    async def burst():
        return await asyncio.gather(*[live.labels("team-a") for _ in range(50)], live.labels("team-b"))

    out = run(burst())
    assert all(o == out[0] for o in out[:50]) and out[0]["x"] == "1"
    assert api.calls == 2  # one GET per namespace, not 51

    for ns in ("c", "d", "e"):  # 404s are cached too; the cache keeps 3 namespaces
        run(live.labels(ns))
    assert len(live._cache) == 3 and "team-a" not in live._cache
    calls = api.calls
    run(live.labels("team-a"))
    assert api.calls == calls + 1  # evicted, so read again


def test_live_lookup_failure_reaches_every_waiter():
    api = FakeCoreV1({}, fail=ConnectionRefusedError())
    live = LiveNamespaces(api=api)

    async def burst():
        return await asyncio.gather(*[live.labels("x") for _ in range(5)], return_exceptions=True)

    out = run(burst())
    assert all(isinstance(o, NamespaceLookupError) for o in out) and api.calls == 1


def _wait(pred, timeout: float = 15.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_watch_mirrors_namespaces_so_lookups_make_no_api_calls(tmp_path):
    """Against a fake API server speaking the real list/watch wire format, through the official
    client: labels come from memory while the watch is up, changes arrive by watch events, and a
    dropped watch falls back to GETs until the next list."""
    from kubestrata.admission.namespaces import NamespaceWatch
    from tests.server.fake_policy_api import FakePolicyAPI, TLSFiles, write_kubeconfig

    tls = TLSFiles()
    try:
        with FakePolicyAPI(tls, path="/api/v1/namespaces", list_kind="NamespaceList") as api:
            api.put(
                {
                    "metadata": {
                        "name": "team-a",
                        "labels": {"pod-security.kubernetes.io/enforce": "restricted"},
                    }
                }
            )
            kc = write_kubeconfig(tmp_path / "kubeconfig", api.url, tls)
            live = LiveNamespaces(kubeconfig=str(kc), context="fake", cache_ttl=60)
            w = NamespaceWatch(live, watch_timeout=2, backoff=(0.05, 0.2))
            w.start()
            try:
                _wait(lambda: live.synced)
                assert run(live.labels("team-a"))["pod-security.kubernetes.io/enforce"] == "restricted"
                assert run(live.labels("nope")) == {"kubernetes.io/metadata.name": "nope"}
                api.put(
                    {
                        "metadata": {
                            "name": "team-a",
                            "labels": {"pod-security.kubernetes.io/enforce": "baseline"},
                        }
                    }
                )
                _wait(
                    lambda: (
                        live.watched.get("team-a", {}).get("pod-security.kubernetes.io/enforce") == "baseline"
                    )
                )
                api.put({"metadata": {"name": "team-b", "labels": {}}})
                _wait(lambda: "team-b" in live.watched)
                api.delete("team-b")
                _wait(lambda: "team-b" not in live.watched)
                for _ in range(20):
                    run(live.labels("team-a"))
                assert live.gets == 0 and api.count(path="/api/v1/namespaces/team-a") == 0
                # history compacted under the watch: it lists again and stays correct
                lists = api.count(path="/api/v1/namespaces", watch=None)
                api.compact()
                api.drop_watches()
                _wait(lambda: live.synced and api.count(path="/api/v1/namespaces") > lists + 1)
                assert run(live.labels("team-a"))["pod-security.kubernetes.io/enforce"] == "baseline"
            finally:
                w.stop()
            assert not live.synced  # stopped: lookups go back to single GETs (this fake answers 404)
            run(live.labels("team-a"))
            assert live.gets == 1 and api.count(path="/api/v1/namespaces/team-a") >= 1
    finally:
        tls.dir.cleanup()
