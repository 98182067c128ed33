#!/usr/bin/env bash
# Install everything the testbed needs on Debian 12, as root; idempotent (a second run
# installs nothing new). Debian packages for the kernel-facing tools and Mininet, then a
# virtual environment in .venv that sees Debian's mininet (--system-site-packages), with
# the testbed installed in it (editable) and its Python dependencies from PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "install.sh: run as root (it installs Debian packages; the testbed builds namespaces)" >&2
  exit 2
fi

PKGS="mininet iproute2 iptables nftables bridge-utils iputils-ping tcpdump dnsmasq-base conntrack
      ethtool iperf3 net-tools procps psmisc wget curl busybox traceroute iputils-tracepath netcat-openbsd dnsutils bird2 nginx-light openssl python3 python3-venv python3-pip"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "install.sh: installing Debian packages:$missing"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing
fi

# bird2 and nginx are run by the testbed inside emulated namespaces only; when this script
# has just installed them, Debian may also have started them in the VM's own namespace (on its
# real interfaces): stop and disable those services (only the ones installed right now).
for svc in bird nginx; do
  pkg=$svc; [ "$svc" = bird ] && pkg=bird2; [ "$svc" = nginx ] && pkg=nginx-light
  case " $missing " in *" $pkg "*) ;; *) continue ;; esac
  if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    systemctl disable --now "$svc" >/dev/null 2>&1 || true
  elif command -v service >/dev/null 2>&1; then
    service "$svc" stop >/dev/null 2>&1 || true
  fi
done

# Debian's python3 is the one that can import Debian's mininet package.
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c "import mininet.net" 2>/dev/null; then
  rm -rf .venv
  /usr/bin/python3 -m venv --system-site-packages .venv
fi
if ! .venv/bin/python -c "import testbed, pandas, pyarrow, matplotlib, scapy, yaml, pytest" 2>/dev/null \
   || [ setup.cfg -nt .venv/.testbed-installed ]; then
  .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
  touch .venv/.testbed-installed
fi
# An editable install leaves the package uncompiled, and a process that may not write bytecode
# (PYTHONDONTWRITEBYTECODE, a read-only checkout) compiles every module it imports at each start:
# 0.07 s of CPU for `testbed plan`, 0.2 s for each `testbed run`. Compiled once here (files
# already up to date are skipped); `testbed bench` brings it up to date before timing.
.venv/bin/python -m compileall -q testbed >/dev/null
echo "install.sh: ready ($(.venv/bin/testbed --version))"
