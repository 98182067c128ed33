"""kube-proxy's partial syncs: rewrite only the chains, sets and map elements that changed (pure).

Upstream (pkg/proxy/iptables and pkg/proxy/nftables, syncProxyRules) decides per sync:
`doFullSync := needFullSync || time.Since(lastFullSync) > FullSyncPeriod` (one hour), where
needFullSync is set at start and after any failed sync. A full sync writes everything; a
partial one skips the chains of the Services whose Service and endpoints did not change
(`skipServiceUpdate`) and writes only the map elements that differ from what it wrote last.

Here the same decision (`needs_full_sync`), and the partial text is the difference between the
ruleset of the last load and the wanted one (rules/render_diff.py): `iptables-restore --noflush`
with only the touched chains (plus the chains of removed Services, flushed and deleted), or one
`nft -f` transaction that flushes and refills the touched chains and adds and deletes elements.
Applying it to what the last load left gives exactly what a full load of the new ruleset gives
(tests/unit/test_kubeproxy_partial.py replays both on a model of each tool; an integration test
compares the kernel's dump). When the difference is not of that kind the sync is a full one.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..rules.model import Ruleset
from ..rules.render_diff import iptables_diff, nft_diff
from .render import render

FULL_SYNC_PERIOD = 3600.0  # seconds: proxyutil.FullSyncPeriod


@dataclass(frozen=True)
class SyncText:
    text: str  # "" when nothing changed: nothing to load
    full: bool


def needs_full_sync(
    previous: Ruleset | None, failed: bool, since_full: float, period: float = FULL_SYNC_PERIOD
) -> bool:
    """Upstream's doFullSync: never synced (or the last sync failed), or `period` seconds since the last full one."""
    return previous is None or failed or since_full > period


def render_sync(ruleset: Ruleset, previous: Ruleset | None, full: bool) -> SyncText:
    """The text of one sync of `ruleset` on a node whose kernel holds `previous` (the last load)."""
    if not full and previous is not None and previous.mode == ruleset.mode:
        if ruleset.mode == "iptables":
            diff = iptables_diff(previous.tables, ruleset.tables)
        elif len(previous.tables) == len(ruleset.tables) == 1:
            diff = nft_diff(previous.tables[0], ruleset.tables[0])
        else:
            diff = None
        if diff is not None:
            head = f"# kube-proxy ({ruleset.mode} mode) on node {ruleset.node}: partial sync\n"
            return SyncText(head + diff if diff else "", False)
    return SyncText(render(ruleset, previous), True)
