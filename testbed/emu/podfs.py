"""A tmpfs, owned by one instance, holding its pods' /etc files (resolv.conf, hosts) (emu/).

`ip netns exec <pod>` binds the files of /etc/netns/<pod>/ over /etc. Writing 10,000 such
folders on the root file system, and removing them at teardown, costs more disk wait than
the rest of a 10k build's file work (README "Speed"). Here the folders live on a tmpfs
mounted at <instance folder>/e, and /etc/netns/<pod> is a symlink to its folder
(`ip netns exec` follows it). Teardown unlinks the symlinks and unmounts the tmpfs; a
Ledger's removal (its owner's, or a stale sweep's once the owner is provably dead) unmounts
it too, so it never outlives its instance folder.
"""

from __future__ import annotations

import os

from .runner import Runner

# One letter: ext4 keeps a symlink's target in its inode when it is under 60 bytes, and
# /run/testbed/<tag>/e/<netns> is for pod keys up to 31 characters. A longer target takes a
# data block, which this VM's ext4 (mounted with `discard`) frees at the unlink by a discard
# the unlink waits for: 4 ms a pod, 40-50 s of a 10,000-pod teardown (issue 18).
FOLDER = "e"
LEGACY = ("etc-netns",)  # what earlier versions mounted: an instance of theirs is still unmounted


def root(instance_dir: str) -> str:
    """Where the instance's pod folders live (a tmpfs once `mount` ran)."""
    return os.path.join(instance_dir, FOLDER)


def mount(runner: Runner, instance_dir: str) -> str:
    """Mount the tmpfs (once); returns its path."""
    path = root(instance_dir)
    if not os.path.ismount(path):
        os.makedirs(path, mode=0o755, exist_ok=True)
        # size bounds its memory: a pod's two files take two 4 KiB pages
        runner.run(["mount", "-t", "tmpfs", "-o", "mode=0755,size=512m", "tb-podfiles", path])
    return path


def unmount(runner: Runner, instance_dir: str) -> None:
    """Unmount the tmpfs if mounted (lazily: a command still inside a pod keeps its copy)."""
    for path in (root(instance_dir), *(os.path.join(instance_dir, old) for old in LEGACY)):
        if os.path.ismount(path):
            runner.run(["umount", "-l", path], check=False)
