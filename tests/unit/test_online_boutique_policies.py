"""Online Boutique's own NetworkPolicies (issue 13 item 6), without root: the 13 files are the
shop's, byte for byte, and the expectations experiments/online-boutique.yaml writes out by hand
for every app -> Service cell are what the policy oracle predicts too (the integration test
measures both with real packets)."""

from __future__ import annotations

import dataclasses
import hashlib
import pathlib

from testbed.experiment.expand import expand
from testbed.experiment.load import load_experiment
from testbed.plan.build import plan_cluster
from testbed.spec.topology import load_topology
from testbed.spec.workloads import load_manifests

REPO = pathlib.Path(__file__).resolve().parents[2]
SHOP = REPO / "manifests" / "realworld" / "online-boutique"
POLICIES = SHOP / "network-policies"

# SHA-256 of GoogleCloudPlatform/microservices-demo kustomize/components/network-policies/*.yaml
# at commit 34ffea917, as copied: a changed byte fails here.
UPSTREAM = {
    "network-policy-adservice.yaml": "17950bae1ef0f49cb434734c37812fd741ad28c0d05a3fb790d79a4d56d23089",
    "network-policy-cartservice.yaml": "71e5539804cb66b077fa9e056bddcded9d1e42f25981dace499f77aca1e5d1d3",
    "network-policy-checkoutservice.yaml": "7262307fe4cd20c8714ba503c1b198fc7607fceead9713e3eb11707c3d2affdd",
    "network-policy-currencyservice.yaml": "d73e6c0ab0d72f9ad4698968a8d2c33d11807f942e871dc4e89370e4b34e3b98",
    "network-policy-deny-all.yaml": "b652eb906e44e1f1528744dec34cc0548403e7bef2b35ada93b289baedfe4457",
    "network-policy-emailservice.yaml": "dc4d2e9c1866ecb2c84ff18b167ced8b855b39862aa56f255d746d61e3885aee",
    "network-policy-frontend.yaml": "c596bc8def5e75a06f92a63a86be84d6d592172a7348d5f9aa184348b9e7e604",
    "network-policy-loadgenerator.yaml": "19b0b5d5fa047c5e689b6bb464c41fdf1ef4b0f7f8b3473d81408a44fd1c927f",
    "network-policy-paymentservice.yaml": "17939596207035d2152261552a3bb589921e85a4ca3d55630c552d3284ba85fb",
    "network-policy-productcatalogservice.yaml": "198e957a61c568d2688209b4304df3df8101fc117b83f196d26b42dc7b24db91",
    "network-policy-recommendationservice.yaml": "de3d1237841711a5e39d85ed475e35f60d155f6f0ce076c0f61496a0f198c117",
    "network-policy-redis.yaml": "2b80b55480bda5e31cd9f39e8e4c741931a904a9ba3f329087352b1de994c069",
    "network-policy-shippingservice.yaml": "e2cfc2c833955a478fc8072d387b6e2b6a8eb5ec5bfa90c8225db8b8d1b3c876",
}


def test_the_thirteen_policy_files_are_the_shops_unmodified():
    got = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in POLICIES.iterdir()}
    assert got == UPSTREAM


def test_hand_written_expectations_cover_every_cell_and_agree_with_the_oracle():
    exp = load_experiment(str(REPO / "experiments" / "online-boutique.yaml"))
    step = next(s for s in exp.steps if s.name == "shop-network-policies")
    plan = plan_cluster(
        load_topology(str(REPO / "topologies" / "three-nodes.yaml")),
        load_manifests([str(SHOP / "kubernetes-manifests.yaml"), *map(str, sorted(POLICIES.iterdir()))]),
    )
    assert len(plan.world.policies) == 13
    apps = sorted(p.name for p in plan.pods if p.namespace == "default")
    services = sorted(s.name for s in plan.services.services if s.namespace == "default" and s.name != "kubernetes")
    assert len(apps) == 12 and len(services) == 12

    cells: dict[tuple[str, str], str] = {}  # (pod, Service) -> outcome written out by hand
    oracle_cells: dict[tuple[str, str], str] = {}
    for group in step.probes:
        if group.target.service is None or group.source.pods is None:
            continue
        hand = group.expect.outcome
        asked = dataclasses.replace(group, expect=dataclasses.replace(group.expect, outcome="oracle"))
        for probe in expand(plan, asked, plan.world):
            cell = (probe.src.name, probe.dst.name)
            if hand == "oracle":
                oracle_cells[cell] = probe.expect_outcome
                continue
            assert cell not in cells, f"{cell} written out twice"
            cells[cell] = hand
            assert probe.expect_outcome == hand, f"{group.name}: {cell} written {hand}, oracle {probe.expect_outcome}"
    assert set(cells) == {(a, s) for a in apps for s in services}  # every cell, by hand
    assert set(oracle_cells) == set(cells)  # and every cell against the oracle in the run
    blocked = sorted(c for c, o in cells.items() if o == "blocked")
    assert len(blocked) == 144 - 12 * 2 - 10 - 15  # 2 frontend Services open; 10 own; 15 callers
