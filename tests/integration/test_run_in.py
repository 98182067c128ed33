"""Runner.run_in (emu/runner.py): a program started from a thread that entered a namespace runs
in that namespace, from several threads at once, and the threads come back to their own; a
failure names the equivalent `nsenter` command."""

from __future__ import annotations

import os
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from testbed.emu.runner import Runner
from testbed.errors import KernelError

from . import test_nftlib

namespaces = test_nftlib.namespaces  # the fixture: four fresh namespaces, removed after the test


def _chains(netns: str | None) -> str:
    """The nat table's rules in `netns` (None: the VM's own namespace)."""
    argv = ["iptables-save", "-t", "nat"]
    return subprocess.run(
        ["ip", "netns", "exec", netns, *argv] if netns else argv, capture_output=True, text=True, check=True
    ).stdout


def test_restores_land_in_their_own_namespace_concurrently(namespaces):
    runner = Runner()
    home = os.readlink("/proc/thread-self/ns/net")

    def load(i: int) -> str:
        text = f"*nat\n:TBRUNIN-{i} - [0:0]\n-A TBRUNIN-{i} -d 10.0.0.{i + 1}/32 -j RETURN\nCOMMIT\n"
        runner.run_in(namespaces[i], ["iptables-restore", "--noflush", "--wait"], input=text)
        return os.readlink("/proc/thread-self/ns/net")

    with ThreadPoolExecutor(4) as pool:
        after = list(pool.map(load, range(4)))
    assert set(after) == {home}  # every thread came back to its own namespace
    for i, name in enumerate(namespaces):
        found = _chains(name)
        assert f"-A TBRUNIN-{i} -d 10.0.0.{i + 1}/32 -j RETURN" in found
        assert all(f"TBRUNIN-{j}" not in found for j in range(4) if j != i)
    assert "TBRUNIN" not in _chains(None)  # never in the VM's own namespace


def test_a_failure_names_the_nsenter_command(namespaces):
    with pytest.raises(KernelError) as err:
        Runner().run_in(
            namespaces[0], ["iptables-restore", "--noflush"], input="*nat\n-A NOSUCHCHAIN -j RETURN\nCOMMIT\n"
        )
    assert f"nsenter --net=/run/netns/{namespaces[0]} iptables-restore --noflush" in str(err.value)
    assert "line 2 failed" in str(err.value)
    with pytest.raises(KernelError) as err:
        Runner().run_in("tb-runin-no-such-namespace", ["true"])
    assert "cannot open network namespace" in str(err.value)
