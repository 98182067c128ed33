"""The pods' /etc files on an instance's own tmpfs (emu/podfs.py): /etc/netns/<pod> is a
symlink to the pod's folder there; removing a pod removes both, teardown only the links.
Runs without root: /etc/netns is replaced by a temporary folder and nothing is mounted."""

from __future__ import annotations

import os

from testbed.emu import dns, podfiles, podfs


def _setup(tmp_path, monkeypatch):
    etc = tmp_path / "etc-netns"
    monkeypatch.setattr(dns, "ETC_NETNS", str(etc))
    monkeypatch.setattr(podfiles, "ETC_NETNS", str(etc))
    root = podfs.root(str(tmp_path / "instance"))
    os.makedirs(root)
    return str(etc), root


def test_files_are_written_on_the_root_behind_a_symlink(tmp_path, monkeypatch):
    etc, root = _setup(tmp_path, monkeypatch)
    files = {"tb-abcd-p1": ("nameserver 10.96.0.10\n", "127.0.0.1 localhost\n")}
    podfiles.write_pod_files(files, {}, root)
    link = os.path.join(etc, "tb-abcd-p1")
    assert os.path.islink(link) and os.readlink(link) == os.path.join(root, "tb-abcd-p1")
    assert open(os.path.join(link, "resolv.conf")).read() == "nameserver 10.96.0.10\n"
    changed = {"tb-abcd-p1": ("nameserver 10.96.0.10\n", "10.0.0.5 db\n")}
    podfiles.write_pod_files(changed, files, root)  # rewritten in place, the link kept
    assert open(os.path.join(link, "hosts")).read() == "10.0.0.5 db\n"
    assert sorted(os.listdir(os.path.join(root, "tb-abcd-p1"))) == ["hosts", "resolv.conf"]


def test_removing_a_pod_removes_link_and_folder_and_teardown_only_the_links(tmp_path, monkeypatch):
    etc, root = _setup(tmp_path, monkeypatch)
    files = {f"tb-abcd-p{i}": ("a\n", "b\n") for i in range(3)}
    podfiles.write_pod_files(files, {}, root)
    dns.remove_resolv_confs(["tb-abcd-p0"])
    assert sorted(os.listdir(etc)) == ["tb-abcd-p1", "tb-abcd-p2"]
    assert sorted(os.listdir(root)) == ["tb-abcd-p1", "tb-abcd-p2"]
    dns.remove_resolv_confs(["tb-abcd-p1", "tb-abcd-p2"], targets=False)  # the tmpfs is unmounted next
    assert os.listdir(etc) == [] and sorted(os.listdir(root)) == ["tb-abcd-p1", "tb-abcd-p2"]


def test_a_folder_without_root_is_written_in_place(tmp_path, monkeypatch):
    etc, _ = _setup(tmp_path, monkeypatch)
    podfiles.write_pod_files({"tb-abcd-p1": ("a\n", "b\n")}, {})
    path = os.path.join(etc, "tb-abcd-p1")
    assert os.path.isdir(path) and not os.path.islink(path)
    dns.remove_resolv_confs(["tb-abcd-p1"])
    assert not os.path.exists(path)
