"""Extract upstream kube-proxy's packet-flow tables and check tests/upstream/kube_proxy_flows.yaml against them (issue 19).

    python3 scripts/upstream_flows.py KUBERNETES-CHECKOUT/pkg/proxy/nftables/proxier_test.go --commit SHA
    python3 scripts/upstream_flows.py proxier_test.go --emit TestLoadBalancer   # YAML flow lines to paste

Reads a proxier_test.go (nftables or iptables) and finds every `packetFlowTest{...}` literal
passed to runPacketFlowTests, per test function: name, sourceIP, destIP, destPort, protocol,
output, masq, with the file's constants (testNodeIP, testExternalClient...), the function's own
`x := "..."` variables and `fmt.Sprintf` / `net.JoinHostPort` outputs resolved. It then compares
them with the committed YAML (the flows of every case whose name starts with the function's
name): flows upstream has that the YAML lacks, flows whose answer differs, and values it could
not resolve. The YAML's header must name the same commit (`--commit`) and file.

The Services and EndpointSlices each test builds are Go code (closures over makeTestService):
they are transcribed into the YAML by hand and checked by the replay itself (a wrong setup gives
wrong DNAT targets). Run by hand against a checkout; the repository needs no network.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

import yaml

DATA = Path(__file__).resolve().parents[1] / "tests" / "upstream" / "kube_proxy_flows.yaml"
FIELDS = ("name", "sourceIP", "destIP", "destPort", "protocol", "output", "masq")
_FUNC = re.compile(r"^func (Test\w+)\(t \*testing\.T\) \{$", re.M)
_CONST = re.compile(r'^const (\w+) = "([^"]*)"$', re.M)
_LOCAL = re.compile(r'\b(\w+)\s*:?=\s*("[^"]*"|\d+)\s*$', re.M)
_ENTRY = re.compile(r"\{\s*\n(\s*name:\s*\"[^\"]*\",.*?)\n\s*\},?", re.S)
_FIELD = re.compile(r"^\s*(\w+):\s*(.+?),?\s*$", re.M)


def _value(text: str, env: dict[str, str]) -> str:
    """A Go expression of the tables, resolved as far as the file allows ("?..." when not)."""
    text = text.strip().rstrip(",")
    if text.startswith('"') and text.endswith('"'):
        return text[1:-1]
    if re.fullmatch(r"-?\d+", text):
        return text
    if text in ("true", "false"):
        return text
    m = re.fullmatch(r"v1\.Protocol(TCP|UDP|SCTP)", text)
    if m:
        return m.group(1)
    m = re.fullmatch(r'fmt\.Sprintf\("([^"]*)",\s*(.*)\)', text)
    if m:
        args = [_value(a, env) for a in m.group(2).split(",")]
        out, i = "", 0
        for part in re.split(r"(%[sd])", m.group(1)):
            if part in ("%s", "%d"):
                out += args[i] if i < len(args) else "?"
                i += 1
            else:
                out += part
        return out
    m = re.fullmatch(r'net\.JoinHostPort\((\w+),\s*"(\d+)"\)', text)
    if m:
        return f"{_value(m.group(1), env)}:{m.group(2)}"
    m = re.fullmatch(r"int32\((\w+)\)|ptr\.To\((.+)\)", text)
    if m:
        return _value(m.group(1) or m.group(2), env)
    return env.get(text, f"?{text}")


def extract(go: str) -> dict[str, list[dict[str, str]]]:
    """Test function -> its packet-flow entries, fields resolved."""
    consts = dict(_CONST.findall(go))
    starts = [(m.start(), m.group(1)) for m in _FUNC.finditer(go)] + [(len(go), "")]
    out: dict[str, list[dict[str, str]]] = {}
    for (start, name), (end, _) in zip(starts, starts[1:]):
        body = go[start:end]
        if "packetFlowTest" not in body:
            continue
        env = dict(consts)
        for var, val in _LOCAL.findall(body):
            env.setdefault(var, val.strip('"'))
        flows = []
        for entry in _ENTRY.findall(body):
            fields = {k: _value(v, env) for k, v in _FIELD.findall(entry) if k in FIELDS}
            if "sourceIP" in fields:
                flows.append(fields)
        if flows:
            out[name] = flows
    return out


def _expected(flow: dict[str, Any]) -> tuple[str, str]:
    output = str(flow.get("output", ""))
    masq = "" if output in ("", "REJECT", "DROP") else str(bool(flow.get("masq", False))).lower()
    return ", ".join(sorted(x.strip() for x in output.split(","))) if output else "", masq


def check(go: str, data: dict[str, Any]) -> list[str]:
    """Differences between the Go tables and the YAML (empty: they agree)."""
    problems = []
    for func, flows in extract(go).items():
        cases = [c for c in data["tests"] if c["name"].split("/")[0].split(" ")[0] == func]
        ours = {
            (f["name"], str(f["source"]), str(f["destination"]), str(f["port"])): f for c in cases for f in c["flows"]
        }
        for f in flows:
            key = (f.get("name", ""), f.get("sourceIP", ""), f.get("destIP", ""), f.get("destPort", ""))
            if any(v.startswith("?") for v in f.values()):
                problems.append(f"{func}: {f.get('name')}: unresolved {[v for v in f.values() if v.startswith('?')]}")
                continue
            mine = ours.get(key)
            if mine is None:
                problems.append(f"{func}: {f.get('name')} ({key[1]} -> {key[2]}:{key[3]}) is not in the YAML")
                continue
            masq = "" if f.get("output", "") in ("", "REJECT", "DROP") else f.get("masq", "false")
            want = (
                ", ".join(sorted(x.strip() for x in f.get("output", "").split(","))) if f.get("output") else "",
                masq,
            )
            if _expected(mine) != want and not mine.get("iptables"):
                problems.append(f"{func}: {f.get('name')}: upstream {want}, YAML {_expected(mine)}")
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("go_file", type=Path)
    ap.add_argument("--commit", help="the checkout's commit: must be the one the YAML names")
    ap.add_argument("--emit", metavar="TEST", help="print the flows of one test function as YAML")
    args = ap.parse_args(argv)
    go = args.go_file.read_text()
    if args.emit:
        flows = extract(go).get(args.emit, [])
        rows = [
            {
                "name": f.get("name"),
                "source": f.get("sourceIP"),
                "destination": f.get("destIP"),
                "port": int(f["destPort"]) if f.get("destPort", "").isdigit() else f.get("destPort"),
                **({"protocol": f["protocol"]} if "protocol" in f else {}),
                "output": f.get("output", ""),
                **({"masq": f["masq"] == "true"} if "masq" in f else {}),
            }
            for f in flows
        ]
        print(yaml.safe_dump(rows, sort_keys=False, default_flow_style=None, width=200), end="")
        return 0
    data = yaml.safe_load(DATA.read_text())
    up = data["upstream"]
    if args.commit and args.commit != up["commit"]:
        print(f"the YAML was read from {up['commit']}, not {args.commit}: re-read it", file=sys.stderr)
        return 1
    problems = check(go, data)
    total = sum(len(v) for v in extract(go).values())
    for p in problems:
        print(p)
    print(f"{total} upstream flows in {args.go_file.name}, {len(problems)} differences")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
