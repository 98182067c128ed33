"""kube-proxy's rulesets -> text: `iptables-restore --noflush` input and `nft -f` input (pure).

The text itself is written by rules/render_iptables.py and rules/render_nft.py; this module
adds what is kube-proxy's: the header line, and, in iptables mode, the service chains of the
previous sync that are gone (flushed and deleted with `-X`, as upstream does after reading
iptables-save). The jumps from the built-in chains (PREROUTING, INPUT...) are applied once to
a fresh node by `render_iptables_bootstrap`, after the first sync text, the way kube-proxy
ensures them with `iptables -C/-I`. nftables mode is one transaction in knftables' command
style that recreates table ip kube-proxy: atomic, idempotent, nothing stale survives.
"""

from __future__ import annotations

from ..rules import render_iptables
from ..rules.model import Ruleset
from ..rules.render_nft import render_commands
from .iptables import SERVICE_CHAIN_PREFIXES


def stale_chains(ruleset: Ruleset, previous: Ruleset | None) -> dict[str, list[str]]:
    """Per table, the service chains of `previous` that `ruleset` no longer has."""
    out: dict[str, list[str]] = {}
    if previous is None:
        return out
    for table in previous.tables:
        now = set(ruleset.chain_names(table.name)) if table.name in {t.name for t in ruleset.tables} else set()
        gone = [c.name for c in table.chains if c.name not in now and c.name.startswith(SERVICE_CHAIN_PREFIXES)]
        if gone:
            out[table.name] = gone
    return out


def render_iptables_restore(ruleset: Ruleset, previous: Ruleset | None = None, header: bool = True) -> str:
    """Input for `iptables-restore --noflush` (tables filter then nat, as kube-proxy writes them)."""
    if ruleset.mode != "iptables":
        raise ValueError(f"a {ruleset.mode} ruleset has no iptables-restore form")
    head = (
        (f"# kube-proxy (iptables mode) on node {ruleset.node}, HOST-IP {ruleset.host_ip}: iptables-restore --noflush")
        if header
        else ""
    )
    return render_iptables.render_restore(ruleset.tables, head, stale_chains(ruleset, previous))


def render_iptables_bootstrap(ruleset: Ruleset) -> str:
    """The jumps from the built-in chains to kube-proxy's, for `iptables-restore --noflush`, once.

    Apply it after the first `render_iptables_restore` text (which creates the KUBE-* chains);
    `-I CHAIN n` puts the jumps first, in kube-proxy's order, before any other rule there."""
    if ruleset.mode != "iptables":
        raise ValueError(f"a {ruleset.mode} ruleset has no iptables form")
    return render_iptables.render_bootstrap(ruleset.tables)


def jump_rules(ruleset: Ruleset) -> list[tuple[str, str, list[str]]]:
    """(table, built-in chain, argv after the chain) of each jump, for `iptables -C`/`-I` checks."""
    return render_iptables.jump_rules(ruleset.tables)


def render_nft(ruleset: Ruleset, header: bool = True) -> str:
    """Input for `nft -f`: one atomic transaction that replaces table ip kube-proxy."""
    if ruleset.mode != "nftables":
        raise ValueError(f"a {ruleset.mode} ruleset has no nft form")
    head = f"# kube-proxy (nftables mode) on node {ruleset.node}, HOST-IP {ruleset.host_ip}: nft -f" if header else ""
    return render_commands(ruleset.tables, head)


def render(ruleset: Ruleset, previous: Ruleset | None = None) -> str:
    """The text for the ruleset's own tool: iptables-restore --noflush or nft -f."""
    if ruleset.mode == "iptables":
        return render_iptables_restore(ruleset, previous)
    return render_nft(ruleset)
