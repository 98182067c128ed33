"""Inputs that must fail, each with the file, the object, the field path and the message.

Every file in data/bad/ states what it must produce in header comments:

    # expect: <document> | <field path> | <message fragment>     (one line per problem; '-' = empty)
    # raises: UnsupportedError                                   (optional; default SpecError)

Files named topo-*.yaml are topologies (load_topology), the others workloads (load_manifests).
The number of problems must match exactly: validate-all reports every problem, and no noise.
"""

from __future__ import annotations

import pathlib
import re

import pytest

from testbed.errors import Problem, SpecError, UnsupportedError
from testbed.spec.topology import load_topology
from testbed.spec.workloads import load_manifests

from ._yaml import kind_cluster

DATA = pathlib.Path(__file__).resolve().parent / "data"
BAD = sorted((DATA / "bad").glob("*.yaml"))
_EXPECT = re.compile(r"^# expect: (.*?) \| (.*?) \| (.*)$")
_RAISES = re.compile(r"^# raises: (\w+)$")


def _expectations(path) -> tuple[type, list[tuple[str, str, str]]]:
    error: type = SpecError
    expected = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if m := _EXPECT.match(line):
            expected.append(tuple("" if part == "-" else part for part in m.groups()))
        elif m := _RAISES.match(line):
            error = {"SpecError": SpecError, "UnsupportedError": UnsupportedError}[m.group(1)]
    return error, expected


def _load(path) -> None:
    if path.name.startswith("topo-"):
        load_topology(str(path))
    else:
        load_manifests([str(path)])


def _assert_problem(err: SpecError, file: str, document: str, path: str, fragment: str) -> Problem:
    hits = [p for p in err.problems if p.path == path and p.document == document and fragment in p.message]
    assert hits, f"no problem at {document!r} {path!r} containing {fragment!r}; got:\n" + "\n".join(
        map(repr, err.problems)
    )
    problem = hits[0]
    assert problem.file == file
    text = str(err)
    line = str(problem)
    assert line in text.splitlines()
    # What the user reads: the file, the object, the field path and the message, in that order.
    assert line.startswith(file)
    if document:
        assert f"({document})" in line
    if path:
        assert f": {path}: " in line
    assert fragment in line
    return problem


def test_every_bad_file_states_its_expectations():
    assert len(BAD) >= 20
    for path in BAD:
        assert _expectations(path)[1], f"{path.name} has no '# expect:' line"


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.name)
def test_bad_input_is_rejected_with_every_problem(path):
    error, expected = _expectations(path)
    with pytest.raises(SpecError) as info:
        _load(path)
    err = info.value
    assert type(err) is error
    assert len(err.problems) == len(expected), "\n".join(map(str, err.problems))
    for document, field, fragment in expected:
        _assert_problem(err, str(path), document, field, fragment)


def test_missing_file_names_the_file(tmp_path):
    missing = str(tmp_path / "nowhere" / "app.yaml")
    for load in (load_topology, lambda p: load_manifests([p])):
        with pytest.raises(SpecError) as info:
            load(missing)
        assert info.value.problems == (Problem(missing, "", "file not found"),)
        assert str(info.value) == f"{missing}: file not found"


def test_a_directory_is_not_a_yaml_file(tmp_path):
    with pytest.raises(SpecError, match="is a directory, expected a YAML file"):
        load_manifests([str(tmp_path)])


def test_malformed_yaml_gives_the_line(yaml_file):
    path = yaml_file("tabs.yaml", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: [unclosed\n")
    with pytest.raises(SpecError) as info:
        load_manifests([path])
    (problem,) = info.value.problems
    assert problem.file == path
    assert re.fullmatch(r"line 5, column \d+", problem.path)
    assert problem.message.startswith("malformed YAML: ")


def test_ipvs_is_an_unsupported_error_not_a_typo(topology):
    with pytest.raises(UnsupportedError) as info:
        topology("""
            kind: Cluster
            apiVersion: kind.x-k8s.io/v1alpha4
            networking: {kubeProxyMode: ipvs}
        """)
    assert "no IPVS" in str(info.value)
    assert info.value.exit_code == 2


def test_unknown_proxy_mode_is_a_plain_spec_error(topology):
    with pytest.raises(SpecError) as info:
        topology("""
            kind: Cluster
            apiVersion: kind.x-k8s.io/v1alpha4
            networking: {kubeProxyMode: userspace}
        """)
    assert type(info.value) is SpecError
    (problem,) = info.value.problems
    assert (problem.path, problem.message) == (
        "networking.kubeProxyMode",
        "must be one of iptables, nftables, none, got 'userspace'",
    )


@pytest.mark.parametrize("kind,api", [("Endpoints", "v1"), ("EndpointSlice", "discovery.k8s.io/v1")])
def test_kinds_of_later_versions_are_unsupported(manifests, kind, api):
    with pytest.raises(UnsupportedError, match=f"kind: {kind} is not emulated by this version yet"):
        manifests(f"""
            apiVersion: {api}
            kind: {kind}
            metadata: {{name: x}}
        """)


def test_duplicate_names_across_files_name_the_first_file(yaml_file):
    pod = """
        apiVersion: v1
        kind: Pod
        metadata: {name: web}
        spec:
          containers: [{name: app}]
    """
    first, second = yaml_file("first.yaml", pod), yaml_file("second.yaml", pod)
    with pytest.raises(SpecError) as info:
        load_manifests([first, second])
    (problem,) = info.value.problems
    assert problem.file == second
    assert problem.path == "metadata.name"
    assert problem.message == f"duplicate Pod default/web (first defined in {first})"


def test_same_name_in_other_namespace_or_kind_is_not_a_duplicate(manifests):
    m = manifests("""
        apiVersion: v1
        kind: Namespace
        metadata: {name: other}
        ---
        apiVersion: v1
        kind: Pod
        metadata: {name: web}
        spec: {containers: [{name: app}]}
        ---
        apiVersion: v1
        kind: Pod
        metadata: {name: web, namespace: other}
        spec: {containers: [{name: app}]}
        ---
        apiVersion: apps/v1
        kind: ReplicaSet
        metadata: {name: web}
        spec:
          selector: {matchLabels: {app: web}}
          template:
            metadata: {labels: {app: web}}
            spec: {containers: [{name: app}]}
    """)
    assert [(p.ref.namespace, p.ref.name) for p in m.pods] == [("default", "web"), ("other", "web")]
    assert [w.ref.kind for w in m.workloads] == ["ReplicaSet"]


@pytest.mark.parametrize(
    "selector,message",
    [
        ("{}", "spec.selector: empty selector is invalid for a Deployment"),
        (
            "{matchExpressions: [{key: app, operator: In}]}",
            "spec.selector.matchExpressions[0].values: operator In needs a non-empty values list",
        ),
        (
            "{matchExpressions: [{key: app, operator: Exists, values: [web]}]}",
            "spec.selector.matchExpressions[0].values: operator Exists takes no values",
        ),
        (
            "{matchExpressions: [{key: app, operator: Like, values: [web]}]}",
            "spec.selector.matchExpressions[0].operator: operator must be one of In, NotIn, Exists, "
            "DoesNotExist, got 'Like'",
        ),
        ("{matchLabels: {app: web}, matchLabel: {x: y}}", "spec.selector.matchLabel: unknown field 'matchLabel'"),
    ],
)
def test_invalid_selectors(manifests, selector, message):
    with pytest.raises(SpecError) as info:
        manifests(f"""
            apiVersion: apps/v1
            kind: Deployment
            metadata: {{name: web}}
            spec:
              selector: {selector}
              template:
                metadata: {{labels: {{app: web}}}}
                spec: {{containers: [{{name: app}}]}}
        """)
    assert [f"{p.path}: {p.message}" for p in info.value.problems] == [message]


def test_template_without_labels_cannot_be_selected(manifests):
    with pytest.raises(SpecError) as info:
        manifests("""
            apiVersion: apps/v1
            kind: ReplicaSet
            metadata: {name: rs}
            spec:
              selector: {matchLabels: {app: rs}}
              template:
                spec: {containers: [{name: app}]}
        """)
    (problem,) = info.value.problems
    assert problem.path == "spec.template.metadata.labels"
    assert problem.message.startswith("template labels are required")


@pytest.mark.parametrize("key", ["/app", "-app", "app-", "a" * 64, "Example.com/app", "x/y/z"])
def test_invalid_label_keys(manifests, key):
    with pytest.raises(SpecError, match="label key .* (has an invalid prefix|is not a valid qualified name)"):
        manifests(f"""
            apiVersion: v1
            kind: Pod
            metadata:
              name: p
              labels: {{"{key}": v}}
            spec: {{containers: [{{name: app}}]}}
        """)


@pytest.mark.parametrize("value", ["-v", "v-", "a b", "v" * 64])
def test_invalid_label_values(manifests, value):
    with pytest.raises(SpecError, match=r"metadata\.labels\.app: label value .* is not valid"):
        manifests(f"""
            apiVersion: v1
            kind: Pod
            metadata:
              name: p
              labels: {{app: "{value}"}}
            spec: {{containers: [{{name: app}}]}}
        """)


@pytest.mark.parametrize(
    "document,message",
    [
        ("[1, 2]", "expected a mapping, got list"),
        ("just a string", "expected a mapping, got string"),
    ],
)
def test_a_document_must_be_a_mapping(manifests, document, message):
    with pytest.raises(SpecError) as info:
        manifests(document)
    (problem,) = info.value.problems
    assert (problem.document, problem.path, problem.message) == ("document 1", "", message)


def test_missing_kind_or_apiversion(manifests):
    with pytest.raises(SpecError) as info:
        manifests("""
            apiVersion: v1
            metadata: {name: a}
            ---
            kind: Pod
            metadata: {name: b}
        """)
    assert [(p.document, p.path, p.message) for p in info.value.problems] == [
        ("document 1", "kind", "required field is missing"),
        ("document 2", "apiVersion", "required field is missing"),
    ]


def test_topology_problems_are_all_reported(topology):
    with pytest.raises(SpecError) as info:
        topology("""
            kind: Cluster
            apiVersion: kind.x-k8s.io/v1alpha4
            name: Bad_Name
            nodes:
              - role: control-plane
                labels: {"bad key": x}
            networking:
              podSubnet: 10.244.0.0/33
              ipFamlly: ipv4
        """)
    got = [(p.path, p.message) for p in info.value.problems]
    assert ("networking.ipFamlly", "unknown field 'ipFamlly'") in got
    assert any(path == "name" and "'Bad_Name' is not a valid name" in msg for path, msg in got)
    assert any(path == "nodes[0].labels.bad key" for path, _ in got)
    assert len(got) == 3  # the bad podSubnet is checked once decoding succeeded


def test_invalid_subnets_are_reported_together(topology):
    with pytest.raises(SpecError) as info:
        topology("""
            kind: Cluster
            apiVersion: kind.x-k8s.io/v1alpha4
            networking:
              podSubnet: 10.244.0.0/33
              serviceSubnet: 10.96.0.1/16
        """)
    got = [(p.path, p.message) for p in info.value.problems]
    assert [path for path, _ in got] == ["networking.podSubnet", "networking.serviceSubnet"]
    assert got[0][1].startswith("'10.244.0.0/33' is not a valid network")
    assert got[1][1].startswith("'10.96.0.1/16' is not a valid network: 10.96.0.1/16 has host bits set")


def test_pod_subnet_too_small_for_the_nodes(topology):
    with pytest.raises(SpecError) as info:
        topology("""
            kind: Cluster
            apiVersion: kind.x-k8s.io/v1alpha4
            nodes: [{role: control-plane}, {role: worker}, {role: worker}]
            networking: {podSubnet: 10.244.0.0/23}
        """)
    (problem,) = info.value.problems
    assert (problem.path, problem.message) == (
        "networking.podSubnet",
        "10.244.0.0/23 holds fewer /24 node CIDRs than the 3 nodes",
    )


def test_node_pod_cidr_outside_pod_subnet(topology):
    with pytest.raises(SpecError) as info:
        topology("""
            kind: Cluster
            apiVersion: kind.x-k8s.io/v1alpha4
            ---
            apiVersion: testbed/v1alpha1
            kind: TestbedConfig
            nodes: [{name: kind-control-plane, podCIDR: 10.245.0.0/24}]
        """)
    (problem,) = info.value.problems
    assert (problem.document, problem.path, problem.message) == (
        "TestbedConfig",
        "nodes[kind-control-plane].podCIDR",
        "10.245.0.0/24 is outside podSubnet 10.244.0.0/16",
    )


def test_underlay_too_small_for_the_nodes(topology):
    with pytest.raises(SpecError, match=r"underlay\.subnet: 192\.168\.1\.0/30 has no room for 3 nodes from host \.2"):
        topology(kind_cluster(2, "underlay: {subnet: 192.168.1.0/30}"))


def test_unknown_routing_mode(topology):
    # host-gw, cloud-routes, vxlan and bgp are planned (tests/unit/test_routing_*.py)
    with pytest.raises(SpecError, match="routing: must be one of host-gw, cloud-routes, vxlan, bgp, got 'ipip'"):
        topology(kind_cluster(0, "routing: ipip"))


def test_ipv6_with_an_ipv4_pod_subnet(topology):
    # single-stack IPv6 is built (tests/unit/test_ipv6_only.py); its ranges must be IPv6
    with pytest.raises(SpecError, match="'10.244.0.0/16': an IPv4 range needs ipFamily: ipv4 or dual"):
        topology("""
            kind: Cluster
            apiVersion: kind.x-k8s.io/v1alpha4
            networking: {ipFamily: ipv6, podSubnet: 10.244.0.0/16}
        """)


def test_two_cluster_documents(topology):
    with pytest.raises(SpecError, match="a second kind Cluster document"):
        topology("""
            kind: Cluster
            apiVersion: kind.x-k8s.io/v1alpha4
            ---
            kind: Cluster
            apiVersion: kind.x-k8s.io/v1alpha4
        """)
