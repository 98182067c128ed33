"""emu/nftlib.py: `nft -f` through libnftables lands in the named namespace, not ours, from
several threads at once, and a refused script fails like the command with nft's own message."""

from __future__ import annotations

import os
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from testbed.emu import nftlib
from testbed.emu.runner import Runner
from testbed.errors import KernelError

SCRIPT = "table inet tbtest {{\n set s {{\n type ipv4_addr\n elements = {{ {ip} }}\n }}\n}}\n"


@pytest.fixture
def namespaces(no_leftovers):
    names = [f"tb-nftlib{os.getpid()}-{i}" for i in range(4)]
    for name in names:
        subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield names
    finally:
        for name in names:
            subprocess.run(["ip", "netns", "del", name], check=False)


def _listing(netns: str | None) -> str:
    inside = ["ip", "netns", "exec", netns] if netns else []
    return subprocess.run(inside + ["nft", "list", "tables"], capture_output=True, text=True, check=True).stdout


def test_scripts_land_in_their_own_namespace_concurrently(namespaces):
    assert nftlib.available()
    runner = Runner()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda i: runner.nft(namespaces[i], SCRIPT.format(ip=f"10.0.0.{i + 1}")), range(4)))
    for i, name in enumerate(namespaces):
        out = subprocess.run(
            ["ip", "netns", "exec", name, "nft", "list", "set", "inet", "tbtest", "s"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert f"10.0.0.{i + 1}" in out and all(f"10.0.0.{j + 1}" not in out for j in range(4) if j != i)
    assert "tbtest" not in _listing(None)  # never in the VM's own namespace


def test_a_refused_script_raises_with_nfts_message(namespaces):
    with pytest.raises(KernelError) as err:
        Runner().nft(namespaces[0], "add rule inet nosuchtable c accept\n")
    assert "No such file or directory" in str(err.value) and "nosuchtable" in str(err.value)
    assert "nosuchtable" not in _listing(namespaces[0])
