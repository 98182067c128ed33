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
import subprocess
import time

from ..errors import TestbedError
from ..plan.model import Plan
from ..plan.network import BgpSpeakerPlan
from .ledger import Ledger, netns_name
from .runner import Runner, stop_processes

BIRD = "bird"


class BgpDaemons:
    def __init__(self, plan: Plan, ledger: Ledger, runner: Runner, timeout: float = 30.0) -> None:
        self.plan, self.ledger, self.runner, self.timeout = plan, ledger, runner, timeout
        self.speakers: tuple[BgpSpeakerPlan, ...] = plan.network.bgp if plan.network is not None else ()
        self.procs: dict[str, subprocess.Popen] = {}
        self.converged_after: float | None = None

    def path(self, speaker: BgpSpeakerPlan, suffix: str) -> str:
        return os.path.join(self.ledger.dir, f"bird-{speaker.key}.{suffix}")

    def argv(self, speaker: BgpSpeakerPlan) -> list[str]:
        return ["ip", "netns", "exec", netns_name(self.ledger.tag, speaker.key), BIRD, "-f",
                "-c", self.path(speaker, "conf"), "-s", self.path(speaker, "ctl"), "-P", self.path(speaker, "pid")]

    def start(self) -> None:
        begin = time.perf_counter()
        for speaker in self.speakers:
            with open(self.path(speaker, "conf"), "w", encoding="utf-8") as handle:
                handle.write(speaker.config)
            with open(self.path(speaker, "log"), "ab") as log:
                proc = subprocess.Popen(self.argv(speaker), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                        start_new_session=True)
            self.procs[speaker.key] = proc
            self.ledger.add_pid(proc.pid)
        self.wait_converged()
        self.converged_after = time.perf_counter() - begin

    def installed(self, speaker: BgpSpeakerPlan) -> set[str]:
        out = self.runner.run(["ip", "-j", "-n", netns_name(self.ledger.tag, speaker.key), "-4", "route", "show",
                               "proto", "bird"], check=False).out
        try:
            return {r["dst"] for r in json.loads(out or "[]")}
        except (ValueError, KeyError, TypeError):
            return set()

    def wait_converged(self) -> None:
        pending = {s.key: s for s in self.speakers}
        deadline = time.monotonic() + self.timeout
        while pending:
            for key, speaker in list(pending.items()):
                proc = self.procs[key]
                if proc.poll() is not None:
                    raise TestbedError(f"bird on {speaker.name} exited with {proc.returncode}: "
                                       f"{self._log_tail(speaker)}")
                if set(speaker.expected) <= self.installed(speaker):
                    del pending[key]
            if not pending:
                return
            if time.monotonic() > deadline:
                missing = "; ".join(f"{s.name} lacks {', '.join(sorted(set(s.expected) - self.installed(s)))}"
                                    for s in pending.values())
                raise TestbedError(f"BGP did not converge within {self.timeout:.0f} s: {missing} "
                                   f"(logs: {self.ledger.dir}/bird-*.log)")
            time.sleep(0.05)

    def _log_tail(self, speaker: BgpSpeakerPlan) -> str:
        try:
            with open(self.path(speaker, "log"), encoding="utf-8", errors="replace") as handle:
                return " | ".join(handle.read().strip().splitlines()[-3:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        procs, self.procs = self.procs, {}
        stop_processes(list(procs.values()))
