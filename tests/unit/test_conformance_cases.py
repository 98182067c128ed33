"""The generated conformance cases (conformance/cases.py): valid, deterministic, distinct, broad."""

from __future__ import annotations

import collections
import pathlib

import pytest

from testbed.conformance.decode import decode_policies, decode_text, dump
from testbed.conformance.dsl import Seq, netpol
from testbed.conformance.families import SYSTEMATIC
from testbed.conformance.generator import generate_cases
from testbed.conformance.resources import MODEL
from testbed.conformance.tags import FEATURES
from testbed.conformance.xyz import MODEL_NAMESPACES, MODEL_POD_LABELS, NODE_CIDRS, PODS, model_namespaces, model_node
from testbed.errors import SpecError
from testbed.spec.workloads import load_manifests

XYZ = pathlib.Path(MODEL)


@pytest.fixture(scope="module")
def cases():
    return generate_cases()


def test_at_least_250_distinct_cases_with_unique_names(cases):
    assert len(cases) >= 250
    assert len({c.name for c in cases}) == len(cases)
    assert len({c.key() for c in cases}) == len(cases)


def test_every_case_decodes_as_the_api_server_would(cases):
    """Each step's YAML decodes again, strictly, to the same policies; labels are valid labels."""
    for case in cases:
        assert case.steps, case.name
        for step in case.steps:
            again = decode_policies(step.texts, f"conformance/{case.name}.yaml")
            assert again == step.policies, case.name
            assert len(set(step.policy_names())) == len(step.policies), case.name
            assert set(step.pod_labels) <= set(PODS) and set(step.namespace_labels) <= set(MODEL_NAMESPACES)
            # labels too: the whole desired state as manifests
            docs = [
                {
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {"name": ns, "labels": step.labels_of_namespace(ns)},
                }
                for ns in MODEL_NAMESPACES
            ]
            docs += [
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {"name": ref[2:], "namespace": ref[0], "labels": step.labels_of_pod(ref)},
                    "spec": {"containers": [{"name": "c"}]},
                }
                for ref in step.pod_labels
            ]
            decode_text("---\n".join(dump(d) for d in docs), "labels.yaml")


def test_same_seed_same_cases_other_seed_other_random_cases():
    a, b = generate_cases(seed=0), generate_cases(seed=0)
    assert [c.name for c in a] == [c.name for c in b]
    assert [c.key() for c in a] == [c.key() for c in b]
    assert [c.tags for c in a] == [c.tags for c in b]
    c = generate_cases(seed=7)
    fixed = {x.name: x.key() for x in a if not x.family.startswith("random")}
    assert fixed == {x.name: x.key() for x in c if not x.family.startswith("random")}
    rand_a = {x.key() for x in a if x.family.startswith("random")}
    rand_c = {x.key() for x in c if x.family.startswith("random")}
    assert rand_a != rand_c and len(rand_c) >= 60


def test_every_feature_appears_in_at_least_five_cases(cases):
    counts = collections.Counter(t for c in cases for t in set(c.tags))
    low = {f: counts[f] for f in FEATURES if counts[f] < 5}
    assert not low, f"features in fewer than 5 cases: {low}"


def test_the_systematic_families_alone_cover_every_feature():
    """Whatever the seed draws, the fixed families already test each feature 5 times."""
    cases = [c for c in generate_cases(seed=3) if not c.family.startswith("random")]
    counts = collections.Counter(t for c in cases for t in set(c.tags))
    assert {f: counts[f] for f in FEATURES if counts[f] < 5} == {}
    assert len(SYSTEMATIC) >= 15


def test_tags_start_with_the_family_and_name_only_known_features(cases):
    families = {c.family for c in cases}
    for c in cases:
        assert set(c.tags[1:]) <= set(FEATURES), c.name
        assert len(set(c.tags)) == len(c.tags)
    assert {
        "deny",
        "allow-all",
        "pod-selector",
        "namespace-selector",
        "and-or",
        "ip-block",
        "ports",
        "relabel-pod",
        "relabel-namespace",
        "update-policy",
        "delete-policy",
        "random",
    } <= families


def test_multi_step_cases_change_something_at_each_step(cases):
    multi = [c for c in cases if len(c.steps) > 1]
    assert len(multi) >= 40
    for c in multi:
        for before, after in zip(c.steps, c.steps[1:]):
            assert before.key() != after.key(), (c.name, after.note)
            assert after.note


def test_limit_keeps_the_breadth_of_families(cases):
    few = generate_cases(limit=30)
    assert len(few) == 30
    assert len({c.family for c in few}) >= 15
    assert [c.name for c in few] == [c.name for c in cases[:30]]


def test_specific_features_are_really_written():
    by_name = {c.name: c for c in generate_cases()}
    deny = by_name["deny-ingress-x-all"].steps[0].policies[0]
    assert deny.policy_types == ("Ingress",) and not deny.policy_types_given and deny.ingress == ()
    andp = by_name["and-ingress-x-ns-y-pod-b"].steps[0].policies[0].ingress[0].peers
    orp = by_name["or-ingress-x-ns-y-pod-b"].steps[0].policies[0].ingress[0].peers
    assert len(andp) == 1 and andp[0].pod_selector and andp[0].namespace_selector
    assert len(orp) == 2
    blk = by_name["ipblock-egress-x-all-but-node1-no-tier"].steps[0].policies[0].egress[0].peers[0].ip_block
    assert (blk.cidr, blk.except_) == ("10.244.0.0/16", (NODE_CIDRS["kind-worker"],))
    rng = (
        next(c for n, c in by_name.items() if n.startswith("ports-ingress-") and n.endswith("-range-81-90-udp"))
        .steps[0]
        .policies[0]
        .ingress[0]
        .ports[0]
    )
    assert (rng.protocol, rng.port, rng.end_port) == ("UDP", 81, 90)
    relabel = by_name["relabel-pod-peer-gains-role"]
    assert [s.labels_of_pod("y/b").get("role") for s in relabel.steps] == [None, "admin", None]
    assert relabel.steps[1].note == "label pod y/b role=admin" and relabel.steps[2].note == "label pod y/b role-"


def test_the_manifest_file_is_the_model():
    m = load_manifests([str(XYZ)])
    assert {n.name: dict(n.labels) for n in m.namespaces} == MODEL_NAMESPACES
    pods = {f"{p.ref.namespace}/{p.ref.name}": p for p in m.pods}
    assert sorted(pods) == sorted(PODS) and not m.workloads and not m.policies
    for ref, p in pods.items():
        assert dict(p.template.labels) == MODEL_POD_LABELS[ref[2:]]
        assert p.template.node_name == model_node(ref)
        assert len(p.template.containers) == 1
        ports = {(q.name, q.container_port, q.protocol) for q in p.template.containers[0].ports}
        assert ports == {(f"serve-{n}-{proto.lower()}", n, proto) for n in (80, 81) for proto in ("TCP", "UDP", "SCTP")}
    # every node holds one pod of each namespace
    per_node = collections.defaultdict(set)
    for ref in PODS:
        per_node[model_node(ref)].add(ref[0])
    assert all(v == {"x", "y", "z"} for v in per_node.values()) and len(per_node) == 3


def test_decode_text_is_strict_and_names_the_source():
    text = dump(netpol("p", "x")) + "---\n" + dump({**netpol("q", "x"), "spec": {"podSelector": {}, "bogus": 1}})
    with pytest.raises(SpecError) as err:
        decode_text(text, "mem.yaml", model_namespaces())
    assert "mem.yaml (NetworkPolicy x/q): spec.bogus: unknown field 'bogus'" in str(err.value)
    with pytest.raises(SpecError, match="namespace 'x' does not exist"):
        decode_text(dump(netpol("p", "x")), "mem.yaml")
    with pytest.raises(SpecError, match="malformed YAML"):
        decode_text("a: [", "mem.yaml")
    with pytest.raises(SpecError, match="duplicate field"):
        decode_text("kind: Namespace\nkind: Namespace\n", "mem.yaml")
    m = decode_text(XYZ.read_text(encoding="utf-8"), "xyz.yaml")
    f = load_manifests([str(XYZ)])
    assert m.namespaces == f.namespaces and m.files == ("xyz.yaml",)
    assert [(p.ref.namespace, p.ref.name, p.template) for p in m.pods] == [
        (p.ref.namespace, p.ref.name, p.template) for p in f.pods
    ]


def test_seq_records_full_states_and_skips_no_ops():
    s = Seq().apply(netpol("p", "x")).step()
    s.label_pod("x/a", {"tier": "web"})  # already so: no change, no note
    s.label_pod("x/a", {"tier": None, "role": "r"}).label_ns("z", {"team": "red"}).step()
    s.label_pod("x/a", {"tier": "web", "role": None}).step()
    (_, pods0, _, note0), (_, pods1, nss1, note1), (_, pods2, _, note2) = s.steps
    assert pods0 == {} and pods1 == {"x/a": {"pod": "a", "role": "r"}} and nss1 == {"z": {"ns": "z", "team": "red"}}
    assert note1 == "label pod x/a role=r tier-; label namespace z team=red"
    assert pods2 == {} and note0 == "apply x/p"
