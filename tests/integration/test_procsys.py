"""emu/procsys.py: a sysctl written through the private procfs lands in the current thread's
network namespace (as /proc/sys would), and nowhere else."""

from __future__ import annotations

import os
import subprocess
import time

from testbed.emu.procsys import PrivateProc
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
