"""How `<pod|node|host> CMD` runs (pure): the argv that runs CMD with `/bin/sh -c` inside a
network namespace with its own UTS namespace whose hostname is the pod's (node's) name.

`ip netns exec` (run by shell/live.py's runner) binds /etc/netns/<netns>/resolv.conf and hosts
over /etc, so the pod's DNS settings apply. In pods, `wget` tries once, as the seeds' busybox
wget does (GNU wget retries 20 times; Debian's BusyBox wget lacks --timeout), and `nslookup` is
BusyBox's when dnsutils is missing, through a private folder put first on PATH.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile

# $0 = hostname, $1 = the command; `cd /` as a container's working directory
_SCRIPT = 'hostname "$0" 2>/dev/null; cd / ; exec /bin/sh -c "$1"'


def exec_argv(hostname: str, command: str, bindir: str = "", prompt: str = "") -> list[str]:
    """argv to run inside the netns: env (PATH, PS1) + unshare --uts + sh -c."""
    env = ["env"]
    if bindir:
        env.append(f"PATH={bindir}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    env.append(f"PS1={prompt or hostname[:63] + ':/# '}")
    return env + ["unshare", "--uts", "--", "/bin/sh", "-c", _SCRIPT, hostname[:63], command]


def make_bindir() -> str:
    """A private folder of the pods' tool wrappers, first on their PATH."""
    path = tempfile.mkdtemp(prefix="testbed-shell-bin-")
    wget = shutil.which("wget")
    if wget:
        with open(os.path.join(path, "wget"), "w", encoding="utf-8") as handle:
            handle.write(f'#!/bin/sh\ncase " $* " in *" --tries"*|*" -t"*) exec {wget} "$@";; esac\n'
                         f'exec {wget} --tries=1 "$@"\n')
        os.chmod(os.path.join(path, "wget"), 0o755)
    busybox = shutil.which("busybox")
    if busybox and not shutil.which("nslookup"):
        os.symlink(busybox, os.path.join(path, "nslookup"))
    return path


_URL_HOST = re.compile(r"^([a-z][a-z0-9+.-]*://)([^/:?#]+)(.*)$")


def substitute(command: str, addresses: dict[str, str]) -> str:
    """Mininet's habit: a word that is a pod/node/host name (alone or as a URL's host) becomes its IP.

    Words in command position (first, or after |, ;, &, &&, ||, `(`) stay: a pod named busybox
    may still run `busybox` the tool.
    """
    def one(word: str) -> str:
        if word in addresses:
            return addresses[word]
        m = _URL_HOST.match(word)
        if m and m.group(2) in addresses:
            return m.group(1) + addresses[m.group(2)] + m.group(3)
        return word
    out, command_position = [], True
    for w in re.split(r"(\s+)", command):
        if not w or w.isspace():
            out.append(w)
            continue
        core = w.rstrip(";|&)")   # `ping web-1;` names web-1
        out.append(w if command_position else one(core) + w[len(core):])
        command_position = w in ("|", ";", "&", "&&", "||", "(", "!") or w.endswith((";", "|", "&", "("))
    return "".join(out)
