"""Bounded inputs and error lines (issue 11, items 5, 8 and 10), one regression test each."""

from __future__ import annotations

import pathlib
import tracemalloc

import pytest

from testbed.errors import Problem, SpecError
from testbed.spec.decode import MAX_DEPTH, load_documents
from testbed.spec.topology import load_topology
from testbed.spec.workloads import MAX_REPLICAS, load_manifests

DATA = pathlib.Path(__file__).parent / "data" / "fuzz"
REPO = pathlib.Path(__file__).resolve().parents[2]


def _refused(path, fragment: str) -> str:
    with pytest.raises(SpecError) as err:
        load_documents(str(path))
    (line,) = str(err.value).splitlines()
    assert line.startswith(str(path)) and fragment in line, line
    return line


def test_an_alias_bomb_is_refused_with_little_memory():
    tracemalloc.start()
    try:
        _refused(DATA / "manifest-alias-bomb.yaml", "more than 1,000,000 values once aliases are expanded")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 << 20, peak  # the bomb expands to 387 million values


def test_aliases_that_stay_small_still_load(tmp_path):
    path = tmp_path / "a.yaml"
    path.write_text("base: &b {app: web}\nx: *b\ny: [*b, *b]\n")
    assert load_documents(str(path)) == [
        (0, {"base": {"app": "web"}, "x": {"app": "web"}, "y": [{"app": "web"}, {"app": "web"}]})
    ]


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("a: &a [*a]\n", "recursive alias"),
        ("a: " + "[" * 500 + "]" * 500 + "\n", f"nested deeper than {MAX_DEPTH} levels"),
        ("a: " + "{b: " * 50_000 + "}" * 50_000 + "\n", f"nested deeper than {MAX_DEPTH} levels"),
        ("a:" + "".join("\n" + " " * i + "k:" for i in range(1, 300)) + " 1\n", f"nested deeper than {MAX_DEPTH}"),
        ("x: &x 1\n" + "".join(f"k{i}: *x\n" for i in range(1001)), "more than 1000 aliases"),
        ("--- 1\n" * 20_001, "more than 20,000 YAML documents"),
        ("when: 2024-13-45\n", "malformed YAML: month must be in 1..12"),
        ("n: " + "9" * 5000 + "\n", "malformed YAML"),
    ],
)
def test_yaml_is_bounded(tmp_path, text, fragment):
    path = tmp_path / "x.yaml"
    path.write_text(text)
    _refused(path, fragment)


def test_size_and_encoding_are_checked(tmp_path):
    big = tmp_path / "big.yaml"
    big.write_bytes(b"a: [" + b"1," * (5 << 20) + b"1]\n")
    _refused(big, "larger than 8 MiB")
    junk = tmp_path / "junk.yaml"
    junk.write_bytes(b"kind: Pod\n\xff\xfe\x00garbage")
    _refused(junk, "not UTF-8 text (byte 10)")
    _refused(tmp_path, "is a directory")


def test_replicas_are_bounded(tmp_path):
    with pytest.raises(SpecError) as err:
        load_manifests([str(DATA / "manifest-huge-replicas.yaml")])
    assert f"spec.replicas: 100000000 is out of range [0, {MAX_REPLICAS}]" in str(err.value)
    ok = tmp_path / "ok.yaml"
    ok.write_text((DATA / "manifest-huge-replicas.yaml").read_text().replace("100000000", str(MAX_REPLICAS)))
    assert load_manifests([str(ok)]).workloads[0].replicas == MAX_REPLICAS  # the 10,000-pod goal
    many = tmp_path / "many.yaml"
    many.write_text("\n---\n".join(ok.read_text().replace("name: web", f"name: web{i}") for i in range(3)))
    with pytest.raises(SpecError) as err:
        load_manifests([str(many)])
    assert "30,000 pods in all: the testbed emulates at most 20,000" in str(err.value)


def test_error_lines_echo_only_an_excerpt():
    problem = Problem("f.yaml", "metadata.name", "'" + "x" * 10_000_000 + "' is not valid", "Pod default/x")
    line = str(problem)
    assert len(line) < 400 and line.startswith("f.yaml (Pod default/x): metadata.name: 'xxx") and " ... " in line


def test_a_huge_name_gives_a_short_line(tmp_path):
    path = tmp_path / "pod.yaml"
    path.write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: " + "x" * 1_000_000 + "}\nspec: {containers: [{name: c}]}\n"
    )
    with pytest.raises(SpecError) as err:
        load_manifests([str(path)])
    (line,) = str(err.value).splitlines()
    assert len(line) < 500 and "metadata.name: 'xxx" in line and "is longer than 253 characters" in line


@pytest.mark.parametrize(
    "field, value, fragment",
    [
        ("podSubnet", "127.0.0.0/16", "overlaps 127.0.0.0/8 (loopback)"),
        ("podSubnet", "224.0.0.0/16", "(multicast)"),
        ("podSubnet", "0.0.0.0/0", "'this network'"),
        ("serviceSubnet", "169.254.0.0/16", "(link-local)"),
        ("serviceSubnet", "240.0.0.0/8", "(reserved, broadcast)"),
        ("serviceSubnet", "10.244.0.0/16", "networking.podSubnet: 10.244.0.0/16 overlaps networking.serviceSubnet"),
        ("serviceSubnet", "10.96.0.0/30", "10.96.0.0/30 is too small"),
        ("serviceSubnet", "10.96.0.0/31", "10.96.0.0/31 is too small"),
    ],
)
def test_unusable_or_clashing_subnets_are_refused_in_the_topology(tmp_path, field, value, fragment):
    path = tmp_path / "topo.yaml"
    path.write_text(f"kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnetworking: {{{field}: {value}}}\n")
    with pytest.raises(SpecError) as err:
        load_topology(str(path))
    lines = str(err.value).splitlines()
    assert any(line.startswith(f"{path} (kind Cluster): networking.") and fragment in line for line in lines), lines


def test_an_underlay_in_loopback_is_refused(tmp_path):
    path = tmp_path / "topo.yaml"
    path.write_text(
        "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\n---\napiVersion: testbed/v1alpha1\n"
        "kind: TestbedConfig\nunderlay: {subnet: 127.0.1.0/24}\n"
    )
    with pytest.raises(SpecError) as err:
        load_topology(str(path))
    assert f"{path} (TestbedConfig): underlay.subnet: 127.0.1.0/24 overlaps 127.0.0.0/8 (loopback)" in str(err.value)


def test_the_overlapping_pod_cidrs_feature_is_kept():
    spec = load_topology(str(REPO / "topologies" / "overlapping-cidrs.yaml"))
    assert spec.allow_overlapping_pod_cidrs
