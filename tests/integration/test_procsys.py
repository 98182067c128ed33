"""The 10,000-pod fixes of emu/: a sysctl written through the private procfs (procsys.py) lands in
the current thread's network namespace and nowhere else; namespaces added in-process (netnsadd.py)
are what `ip netns add` makes."""

from __future__ import annotations

import os
import secrets
import subprocess
import time

import pytest

from testbed.emu.netnsadd import add_netns
from testbed.emu.procsys import PrivateProc
from testbed.errors import KernelError
from testbed.netns import in_netns

KEY = "net/ipv4/icmp_ratemask"


def _read(pid: int | None) -> str:
    argv = ["cat", f"/proc/sys/{KEY}"]
    if pid is not None:
        argv = ["nsenter", f"--net=/proc/{pid}/ns/net", *argv]
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout.strip()


def test_private_procfs_writes_the_entered_namespace_only():
    holder = subprocess.Popen(["unshare", "--net", "sleep", "30"])
    try:
        deadline = time.monotonic() + 10
        while os.readlink(f"/proc/{holder.pid}/ns/net") == os.readlink("/proc/self/ns/net"):
            assert time.monotonic() < deadline, "unshare did not make its namespace"
            time.sleep(0.01)  # until unshare(2) ran: never write into the VM's own namespace
        before_root = _read(None)
        assert _read(holder.pid) == "6168"  # the kernel's default for a new namespace (0x1818)
        with PrivateProc() as proc:
            assert proc.private  # this kernel has fsopen: a procfs of our own, not /proc
            with in_netns(f"/proc/{holder.pid}/ns/net"):
                proc.write(KEY, "0")
        assert _read(holder.pid) == "0"
        assert _read(None) == before_root  # the VM's own namespace is untouched
    finally:
        holder.kill()
        holder.wait()


def test_in_process_netns_add_makes_what_ip_netns_add_makes():
    """emu/netnsadd.py: named namespaces `ip netns` lists, enters and deletes; a taken name is refused."""
    tag = secrets.token_hex(2)  # no folder in /run/testbed: a stale sweep takes them if we die here
    names = [f"tb-{tag}-a", f"tb-{tag}-b"]
    try:
        add_netns("/run/netns", names)
        listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
        assert all(n in listed for n in names)
        inodes = {os.stat(f"/run/netns/{n}").st_ino for n in names} | {os.stat("/proc/self/ns/net").st_ino}
        assert len(inodes) == 3  # two new namespaces, neither of them ours
        assert os.readlink("/proc/thread-self/ns/net") == os.readlink("/proc/self/ns/net")  # back home
        links = subprocess.run(["ip", "-n", names[0], "-o", "link"], capture_output=True, text=True, check=True)
        assert links.stdout.split(":")[1].strip() == "lo"
        with pytest.raises(KernelError, match="File exists"):
            add_netns("/run/netns", [names[0]])
        assert os.stat(f"/run/netns/{names[0]}").st_ino in inodes  # the first one is still mounted
    finally:
        subprocess.run(["ip", "-force", "-batch", "-"], input="".join(f"netns del {n}\n" for n in names), text=True)
    assert not any(n in os.listdir("/run/netns") for n in names)
