"""How `<pod|node|host> CMD` runs (pure): the argv that runs CMD with /bin/sh inside a network
namespace with its own UTS namespace whose hostname is the pod's (node's) name.

`ip netns exec` (run by shell/live.py's runner) binds /etc/netns/<netns>/resolv.conf and hosts
over /etc, so the pod's DNS settings apply. In pods, `wget` tries once, as the seeds' busybox
wget does (GNU wget retries 20 times; Debian's BusyBox wget lacks --timeout), and `nslookup` is
BusyBox's when dnsutils is missing: shell functions from a small rc file, read for the command
and, through $ENV, by every interactive shell started in the pod. Functions rather than
wrapper programs, because the instance's folder may sit on a noexec /run.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile

# $0 = hostname, $1 = the command; `cd /` as a container's working directory. The command is
# eval'ed by this shell, after the rc file, so its functions apply to it.
_SCRIPT = (
    'hostname "$0" 2>/dev/null; cd / ; __tb_cmd=$1; set --; '
    'if [ -n "$ENV" ]; then . "$ENV"; fi; eval "unset __tb_cmd; $__tb_cmd"'
)


def exec_argv(hostname: str, command: str, rcfile: str = "", prompt: str = "") -> list[str]:
    """argv to run inside the netns: env (PS1, ENV) + unshare --uts + sh -c."""
    env = ["env", f"PS1={prompt or hostname[:63] + ':/# '}"] + ([f"ENV={rcfile}"] if rcfile else [])
    return env + ["unshare", "--uts", "--", "/bin/sh", "-c", _SCRIPT, hostname[:63], command]


def rc_text() -> str:
    """The pods' shell functions (see the module's docstring)."""
    lines = ['wget() { command wget --tries=1 "$@"; }   # a later --tries=N wins']
    if shutil.which("busybox") and not shutil.which("nslookup"):
        lines.append('nslookup() { busybox nslookup "$@"; }')
    return "\n".join(lines) + "\n"


def make_rcfile(parent: str | None = None) -> str:
    """Write the pods' rc file into a private folder; its path."""
    folder = tempfile.mkdtemp(prefix="testbed-shell-rc-", dir=parent)
    os.chmod(folder, 0o755)
    path = os.path.join(folder, "pod.rc")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(rc_text())
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
        core = w.rstrip(";|&)")  # `ping web-1;` names web-1
        out.append(w if command_position else one(core) + w[len(core) :])
        command_position = w in ("|", ";", "&", "&&", "||", "(", "!") or w.endswith((";", "|", "&", "("))
    return "".join(out)
