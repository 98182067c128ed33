"""Every line of README.md's shell walkthrough, as printed, in `testbed up --script`."""

from __future__ import annotations

import os
import re
import subprocess

from .conftest import ROOT


def test_readme_walkthrough_runs_as_printed(testbed_cmd, tmp_path, no_leftovers):
    text = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    section = text[text.index("### The interactive shell (`testbed up`)") :]
    block = section[section.index("```\n") + 4 :]
    block = block[: block.index("```")]
    lines = block.splitlines()
    assert lines[0] == "$ testbed up topologies/three-nodes.yaml"
    cmds = [re.sub(r"\s+#.*$", "", ln[len("testbed> ") :]) for ln in lines[1:]]
    script = tmp_path / "walkthrough.txt"
    script.write_text("\n".join(cmds) + "\n")
    argv, env = testbed_cmd
    out = subprocess.run(
        argv + ["up", os.path.join(ROOT, "topologies", "three-nodes.yaml"), "-q", "--script", str(script)],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    both = out.stdout + out.stderr  # wget reports on stderr
    assert both.count("Remote file exists.") == 2 and "blocked" in out.stdout
    assert "Retrying" not in both  # wget tried once under the policy, as busybox wget does
    assert "KUBE-SVC-" in out.stdout and "0% dropped" in out.stdout
    assert re.search(r" TCP 10\.244\.\d+\.\d+:\d+ -> 10\.244\.\d+\.\d+:80 container=nginx", out.stdout)  # logs
