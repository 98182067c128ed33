"""advertiseServiceSubnet over IPv6 with real packets (issue 15): experiments/dual-stack-advertise.yaml
(a dual-stack bgp cluster) has the laptop, outside the cluster, reach dual-stack ClusterIPs over
IPv4 and IPv6 (TCP, UDP, HTTP to http://[addr]/) through the advertised ranges; kube-proxy
masquerades those off-cluster sources, so the pods see a node of the family. The laptop's IPv6
route is there while the cluster runs and nothing is left behind."""

from __future__ import annotations

import os
import subprocess

import pandas as pd

from testbed.emu.cluster import EmulatedCluster
from testbed.experiment.load import load_experiment
from testbed.experiment.run import run_experiment
from testbed.plan.build import plan_cluster
from testbed.spec.topology import load_topology
from testbed.spec.workloads import load_manifests

from .conftest import ROOT


def test_clusterips_reached_from_outside_in_both_families(tmp_path, no_leftovers):
    exp = load_experiment(os.path.join(ROOT, "experiments", "dual-stack-advertise.yaml"))
    run_dir, passed = run_experiment(exp, str(tmp_path), progress=lambda _m: None)
    rows = pd.read_parquet(os.path.join(run_dir, "probes.parquet"))
    assert passed, rows[~rows["outcome_ok"]][["group", "dst_ip", "outcome", "error"]].to_string()
    six = rows[rows["family"] == "IPv6"]
    assert len(six) >= 9 and six["dst_ip"].str.startswith("fd00:10:96::").all()
    assert (six["outcome"] == "connected").all() and six["seen_src_ip"].str.startswith("fd00:192:168:1::").all()
    assert set(six["protocol"]) == {"TCP", "UDP"} and (six["method"] == "http").any()
    four = rows[rows["family"] == "IPv4"]
    assert (four["outcome"] == "connected").all() and four["seen_src_ip"].str.startswith("192.168.1.").all()


def test_the_laptop_routes_the_ipv6_service_range_only_when_advertised(tmp_path, no_leftovers):
    topology = os.path.join(ROOT, "topologies", "dual-stack-advertise.yaml")
    manifests = load_manifests([os.path.join(ROOT, "manifests", "dual-stack-services.yaml")])
    for advertised in (True, False):
        text = open(topology, encoding="utf-8").read()
        if not advertised:
            text = text.replace("advertiseServiceSubnet: true\n", "")
        path = tmp_path / f"topology-{advertised}.yaml"
        path.write_text(text)
        with EmulatedCluster(plan_cluster(load_topology(str(path)), manifests, seed=1)) as cluster:
            laptop = cluster.netns_path(next(x.key for x in cluster.plan.externals if x.name == "laptop"))
            out = subprocess.run(
                ["nsenter", f"--net={laptop}", "ip", "-6", "route", "show", "fd00:10:96::/112"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            assert ("via fd00:192:168:1::" in out) == advertised, out
