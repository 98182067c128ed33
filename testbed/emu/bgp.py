"""The bgp mode's daemons: one real bird2 per node (and on the top-of-rack router).

Part of emu/. Each daemon runs inside its node's network namespace (`ip netns exec`), so it
sees and listens on emulated addresses only; its configuration (rendered by plan/bird.py),
control socket, pid file and log live in the instance's ledger folder /run/testbed/<tag>/,
and its pid is recorded in the ledger. Teardown stops them; `clean` finds any survivor with
`ip netns pids` on the instance's namespaces, like every process run inside them.

The cluster is ready only when every daemon has installed the routes the plan expects
(`ip -j route show proto bird` in its namespace): a probe must never race BGP convergence.
"""

from __future__ import annotations

import json
import os
import time

from ..errors import DaemonNotReady
from ..plan.model import Plan
from ..plan.network import BgpSpeakerPlan
from .daemon import Daemon, stop_all
from .ledger import Ledger, netns_name
from .runner import Runner

BIRD = "bird"


class BgpDaemons:
    def __init__(self, plan: Plan, ledger: Ledger, runner: Runner, timeout: float = 30.0) -> None:
        self.plan, self.ledger, self.runner, self.timeout = plan, ledger, runner, timeout
        self.speakers: tuple[BgpSpeakerPlan, ...] = plan.network.bgp if plan.network is not None else ()
        self.daemons: dict[str, Daemon] = {}
        self.converged_after: float | None = None

    def path(self, speaker: BgpSpeakerPlan, suffix: str) -> str:
        return os.path.join(self.ledger.dir, f"bird-{speaker.key}.{suffix}")

    def argv(self, speaker: BgpSpeakerPlan) -> list[str]:
        return self.daemon(speaker).full_argv()

    def daemon(self, speaker: BgpSpeakerPlan) -> Daemon:
        """bird in the foreground in the speaker's namespace; ready once its control socket
        exists (it has read its configuration). Convergence is waited for across all of them."""
        ctl = self.path(speaker, "ctl")
        return Daemon(
            f"bird on {speaker.name}",
            [BIRD, "-f", "-c", self.path(speaker, "conf"), "-s", ctl, "-P", self.path(speaker, "pid")],
            self.path(speaker, "log"),
            netns=netns_name(self.ledger.tag, speaker.key),
            ready=lambda _d: os.path.exists(ctl),
            ready_timeout=self.timeout,
        )

    def start(self) -> None:
        begin = time.perf_counter()
        for speaker in self.speakers:
            with open(self.path(speaker, "conf"), "w", encoding="utf-8") as handle:
                handle.write(speaker.config)
            daemon = self.daemon(speaker)
            self.daemons[speaker.key] = daemon
            self.ledger.add_pid(daemon.start(self.runner))
        self.wait_converged()
        self.converged_after = time.perf_counter() - begin

    def installed(self, speaker: BgpSpeakerPlan) -> set[str]:
        """The prefixes bird has installed in the speaker's kernel, in each family it expects
        (a dual-stack speaker's IPv6 /64s too)."""
        families = ["-4"] + (["-6"] if any(":" in p for p in speaker.expected) else [])
        found: set[str] = set()
        for family in families:
            out = self.runner.run(
                ["ip", "-j", "-n", netns_name(self.ledger.tag, speaker.key), family, "route", "show", "proto", "bird"],
                check=False,
            ).out
            try:
                found |= {r["dst"] for r in json.loads(out or "[]")}
            except (ValueError, KeyError, TypeError):
                pass
        return found

    def wait_converged(self) -> None:
        pending = {s.key: s for s in self.speakers}
        deadline = time.monotonic() + self.timeout
        while pending:
            for key, speaker in list(pending.items()):
                self.daemons[key].check("while BGP converged")
                if set(speaker.expected) <= self.installed(speaker):
                    del pending[key]
            if not pending:
                return
            if time.monotonic() > deadline:
                missing = "; ".join(
                    f"{s.name} lacks {', '.join(sorted(set(s.expected) - self.installed(s)))}" for s in pending.values()
                )
                raise DaemonNotReady(
                    "BGP",
                    f"did not converge within {self.timeout:.0f} s",
                    os.path.join(self.ledger.dir, "bird-*.log"),
                    missing,
                )
            time.sleep(0.05)

    def stop(self) -> None:
        daemons, self.daemons = self.daemons, {}
        stop_all(list(daemons.values()))
