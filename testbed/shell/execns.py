"""How `<pod|node|host> CMD` runs (pure): the argv that runs CMD with `/bin/sh -c` inside a
network namespace with its own UTS namespace whose hostname is the pod's (node's) name.

`ip netns exec` (run by shell/live.py's runner) binds /etc/netns/<netns>/resolv.conf and hosts
over /etc, so the pod's DNS settings apply. In pods, `wget` is BusyBox's (the seeds' pods run
busybox:1.28, whose wget tries once and prints "remote file exists"), through a folder of
applet links put first on PATH.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile

# $0 = hostname, $1 = the command; `cd /` as a container's working directory
_SCRIPT = 'hostname "$0" 2>/dev/null; cd / ; exec /bin/sh -c "$1"'
APPLETS = ("wget", "nslookup")


def exec_argv(hostname: str, command: str, bindir: str = "", prompt: str = "") -> list[str]:
    """argv to run inside the netns: env (PATH, PS1) + unshare --uts + sh -c."""
    env = ["env"]
    if bindir:
        env.append(f"PATH={bindir}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    env.append(f"PS1={prompt or hostname[:63] + ':/# '}")
    return env + ["unshare", "--uts", "--", "/bin/sh", "-c", _SCRIPT, hostname[:63], command]


def make_bindir() -> str:
    """A private folder of BusyBox applet links for pods ("" when BusyBox is missing)."""
    busybox = shutil.which("busybox")
    if not busybox:
        return ""
    path = tempfile.mkdtemp(prefix="testbed-shell-bin-")
    for applet in APPLETS:
        if applet == "nslookup" and shutil.which("nslookup"):
            continue   # dnsutils' nslookup, when installed, is the better one
        os.symlink(busybox, os.path.join(path, applet))
    return path


_URL_HOST = re.compile(r"^([a-z][a-z0-9+.-]*://)([^/:?#]+)(.*)$")


def substitute(command: str, addresses: dict[str, str]) -> str:
    """Mininet's habit: a word that is a pod/node/host name (alone or as a URL's host) becomes its IP."""
    def one(word: str) -> str:
        if word in addresses:
            return addresses[word]
        m = _URL_HOST.match(word)
        if m and m.group(2) in addresses:
            return m.group(1) + addresses[m.group(2)] + m.group(3)
        return word
    return "".join(one(w) for w in re.split(r"(\s+)", command))
