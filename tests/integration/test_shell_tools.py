"""Tools in pods (issue 14 item 6): installed by scripts/install.sh, working inside a pod with
the pod's DNS settings, hostname and /etc/hosts."""

from __future__ import annotations

import os

from .conftest import ROOT, run_up


def test_tools_work_inside_a_pod_with_its_dns(testbed_cmd, tmp_path, no_leftovers):
    script = tmp_path / "tools.txt"
    script.write_text(
        "\n".join(
            [
                "get svc nginx -o jsonpath=svc={.spec.clusterIP}{'\\n'}",
                "busybox hostname; grep busybox /etc/hosts",
                "busybox nslookup nginx | grep -A1 'Name:'",
                "busybox dig +short +search nginx",
                "busybox nc -zv -w2 nginx 80",
                "busybox curl -s -o /dev/null -w 'http=%{http_code}\\n' http://nginx/",
                "busybox traceroute -n -w1 -q1 -m5 nginx-5dfdd4bdfc-x9czn",
                "busybox tracepath -n -m5 nginx-5dfdd4bdfc-x9czn",
                "busybox ss -tln",
                "busybox tcpdump --version",
                "busybox busybox | head -1",
            ]
        )
        + "\n"
    )
    out = run_up(testbed_cmd, ["--seed", "1", "-f", os.path.join(ROOT, "manifests", "seed003-nginx.yaml")], str(script))
    text = out.stdout + out.stderr
    assert out.returncode == 0, text[-3000:]
    svc = next(line[4:] for line in out.stdout.splitlines() if line.startswith("svc="))
    assert f"Address: {svc}" in out.stdout  # the Service IP, from the cluster DNS
    assert "nginx.default.svc.cluster.local" in out.stdout and f"\n{svc}\n" in out.stdout  # nslookup, dig
    assert "succeeded" in text and "http=200" in out.stdout  # nc, curl through the Service
    assert "10.244.2.2" in out.stdout and "reached" in out.stdout  # traceroute, tracepath to the pod
    assert "\nbusybox\n" in out.stdout and "BusyBox" in out.stdout and "tcpdump version" in text
