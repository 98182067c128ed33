"""How a large probe run is split over threads: by source namespace, balanced, deterministic."""

from __future__ import annotations

from collections import Counter

from testbed.traffic.prober import MIN_PROBES_PER_WORKER, Probe, _worker_count, shard_by_source


def _probes(sizes: dict[str, int]) -> list[Probe]:
    out: list[Probe] = []
    for ns, n in sizes.items():
        out += [Probe(len(out), ns, "10.0.0.1", 80, "TCP") for _ in range(n)]
    return out


def test_every_probe_once_each_source_in_one_shard_and_sizes_balanced():
    probes = _probes({f"/run/netns/p{i}": 100 + 7 * i for i in range(10)})
    shards = shard_by_source(probes, 2)
    assert sorted(i for s in shards for i in s) == list(range(len(probes)))
    owner = {p.src_netns: k for k, s in enumerate(shards) for p in (probes[i] for i in s)}
    assert Counter(owner.values()) == Counter({0: 5, 1: 5})  # each namespace has one owner
    for k, s in enumerate(shards):
        assert all(owner[probes[i].src_netns] == k for i in s) and s == sorted(s)
    sizes = [len(s) for s in shards]
    assert max(sizes) - min(sizes) <= 163  # at most the largest namespace apart
    assert shards == shard_by_source(probes, 2)  # same probes, same shards


def test_one_source_or_few_probes_stay_in_one_thread():
    assert shard_by_source(_probes({"/run/netns/a": 50}), 4) == [list(range(50))]
    assert _worker_count(MIN_PROBES_PER_WORKER - 1, 2) == 1
    assert _worker_count(10 * MIN_PROBES_PER_WORKER, 2) == 2
    assert _worker_count(10 * MIN_PROBES_PER_WORKER, 64) == 4  # bounded
