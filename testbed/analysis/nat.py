"""NAT-free addressing per kind of communication (pure).

Pipeline: dataset.load_dataset() -> **nat_table()** -> report/ (the NAT table) and compare.

The Kubernetes model (scenarios 000-002) says pods reach pods and nodes reach pods without NAT:
the server sees the sender's own address. For every connected probe whose server reported
the source it saw (seen_src_ip), that address is compared with expected_src_ips (the
addresses a NAT-free path shows; empty means any) — recomputed here from those raw columns,
so the verdict does not depend on the stored nat_free column. The table also counts how
often the server saw src_ip itself: a node reaching its own pods shows cni0's gateway
address instead, which is still NAT-free.
"""

from __future__ import annotations

from collections import Counter

import pandas as pd

from .dataset import communications_in_order

NAT_COLUMNS = (
    "communication",
    "probes",
    "connected",
    "checked",
    "nat_free",
    "violations",
    "saw_sender_ip",
    "verdict",
    "expected_and_seen",
    "unexpected_sources",
)


def nat_checked(frame: pd.DataFrame) -> pd.Series:
    """Rows where NAT can be judged: connected, and the server reported the source it saw."""
    return (frame["outcome"] == "connected") & (frame["seen_src_ip"].astype(str) != "")


def nat_free(frame: pd.DataFrame) -> pd.Series:
    """Per row: True/False where judged (seen address among the expected ones), <NA> elsewhere."""
    checked = nat_checked(frame)
    values = []
    for ok, seen, expected in zip(checked, frame["seen_src_ip"], frame["expected_src_ips"]):
        if not ok:
            values.append(pd.NA)
            continue
        allowed = str(expected).split()
        values.append(not allowed or str(seen) in allowed)
    return pd.Series(values, index=frame.index, dtype="boolean")


def nat_violations(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows whose server saw an address other than the expected ones."""
    return frame[nat_free(frame).fillna(True) == False]  # noqa: E712 (elementwise)


def verdict(checked: int, violations: int) -> str:
    """'yes' (NAT-free), 'no' (at least one violation) or 'n/a' (nothing to judge)."""
    if violations:
        return "no"
    return "yes" if checked else "n/a"


def expected_kind(src_kind: str, src_ip: str, expected: str) -> str:
    """What a row expected the server to see: "NAT-free" (the sender's own address; for a node,
    any of its addresses), "SNAT" (other addresses: a node's, for NodePort and LoadBalancer
    traffic) or "any" (not checked)."""
    allowed = str(expected).split()
    if not allowed:
        return "any"
    if src_kind == "node" or str(src_ip) in allowed or allowed == ["127.0.0.1"]:
        return "NAT-free"
    return "SNAT"


def seen_kind(src_ip: str, seen: str, expectation: str, expected: str) -> str:
    """What the server saw, in the same words: "NAT-free" when it saw the sender's own address
    (or an address a NAT-free path shows, such as cni0's gateway), else "SNAT"."""
    if str(seen) == str(src_ip) or (expectation == "NAT-free" and str(seen) in str(expected).split()):
        return "NAT-free"
    return "SNAT"


def expected_and_seen(sub: pd.DataFrame, checked: pd.Series) -> str:
    """E.g. "expected SNAT; seen SNAT 60/60" or "expected NAT-free; seen NAT-free 58/60, SNAT 2/60",
    over the rows where NAT can be judged; "—" when none can."""
    rows = sub[checked]
    if rows.empty:
        return "—"
    wanted: Counter[str] = Counter()
    seen: Counter[str] = Counter()
    for kind, src, saw, expected in zip(
        rows["src_kind"], rows["src_ip"], rows["seen_src_ip"], rows["expected_src_ips"]
    ):
        want = expected_kind(kind, src, expected)
        wanted[want] += 1
        seen[seen_kind(src, saw, want, expected)] += 1
    total = len(rows)
    order = ("NAT-free", "SNAT", "any")
    expect = " or ".join(k for k in order if wanted[k])
    return f"expected {expect}; seen " + ", ".join(f"{k} {seen[k]}/{total}" for k in order if seen[k])


def nat_table(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per communication: probes, connected, checked, NAT-free, violations, verdict.

    `nat_free` and `verdict` say whether the source the server saw was the *expected* one, which
    for NodePort traffic is a node's address: expected_and_seen says in words what was expected
    and what was seen ("expected SNAT; seen SNAT 60/60"), so "yes" is never read as "no NAT".

    unexpected_sources lists the addresses seen instead of the expected ones, with counts.
    """
    free = nat_free(frame)
    checked = nat_checked(frame)
    rows = []
    for comm in communications_in_order(frame["communication"]):
        mask = frame["communication"] == comm
        sub = frame[mask]
        n_checked = int(checked[mask].sum())
        n_free = int(free[mask].fillna(False).sum())
        violated = (free[mask].fillna(True) == False).to_numpy(dtype=bool)  # noqa: E712 (elementwise)
        bad = Counter(str(s) for s in sub["seen_src_ip"].to_numpy()[violated])
        rows.append(
            {
                "communication": comm,
                "probes": int(mask.sum()),
                "connected": int((sub["outcome"] == "connected").sum()),
                "checked": n_checked,
                "nat_free": n_free,
                "violations": n_checked - n_free,
                "saw_sender_ip": int((checked[mask] & (sub["seen_src_ip"] == sub["src_ip"])).sum()),
                "verdict": verdict(n_checked, n_checked - n_free),
                "expected_and_seen": expected_and_seen(sub, checked[mask]),
                "unexpected_sources": ", ".join(f"{ip} ×{n}" for ip, n in sorted(bad.items())),
            }
        )
    table = pd.DataFrame(rows, columns=list(NAT_COLUMNS))
    for col in ("probes", "connected", "checked", "nat_free", "violations", "saw_sender_ip"):
        table[col] = table[col].astype("int64")
    return table


def nat_verdicts(frame: pd.DataFrame) -> dict[str, str]:
    """communication -> 'yes' | 'no' | 'n/a'."""
    table = nat_table(frame)
    return dict(zip(table["communication"], table["verdict"]))
