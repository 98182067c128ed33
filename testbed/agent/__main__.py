"""`python -m testbed.agent --config FILE --tag TAG`: the agent serving every emulated pod's ports.

Where it sits: started once per cluster by emu/ (see agent/server.py for the life cycle). The tag
is not used by the agent itself: it only marks the command line, so that cleanup can find exactly
the agents of one testbed run (by /proc/PID/cmdline) instead of killing by a broad name.
"""

from __future__ import annotations

import argparse
import sys

from testbed.agent.server import Agent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m testbed.agent", description=__doc__)
    parser.add_argument("--config", required=True, help="JSON file listing pods and their ports")
    parser.add_argument("--tag", required=True, help="marker for cleanup (unused by the agent)")
    parser.add_argument("--max-files", type=int, default=0, help="open-files limit to run under (0: the most allowed)")
    args = parser.parse_args(argv)
    return Agent(args.config).run(args.max_files)


if __name__ == "__main__":
    sys.exit(main())
