"""Bring the loopback stack up or down from the command line (used by ``make demo``).

    python -m tests.stack up   [--workdir .demo] [--with ssh,s3,mongo,mlflow]
    python -m tests.stack status [--workdir .demo]
    python -m tests.stack down [--workdir .demo]
    python -m tests.stack seed [--workdir .demo]   (the demo platform on the source side)
"""

from __future__ import annotations

import argparse
import json
import sys

from tests.stack import demo_platform
from tests.stack.stack import COMPONENTS, Stack, read_state, running, stop_recorded


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tests.stack", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["up", "down", "status", "seed"])
    parser.add_argument("--workdir", default=".demo")
    parser.add_argument("--with", dest="components", default=",".join(COMPONENTS),
                        help="comma-separated components (default: all)")
    args = parser.parse_args(argv)
    state = read_state(args.workdir)

    if args.action == "status":
        print(json.dumps({"running": running(state), "state": state}, indent=2))
        return 0 if running(state) else 1
    if args.action == "seed":
        if not running(state):
            print(f"no running stack in {args.workdir}; run 'python -m tests.stack up' first", file=sys.stderr)
            return 1
        written = demo_platform.seed(state)
        print("seeded: " + ", ".join(f"{count} {what}" for what, count in written.items()), file=sys.stderr)
        return 0
    if args.action == "down":
        stopped = stop_recorded(state)
        print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
        return 0
    wanted = [c.strip() for c in args.components.split(",") if c.strip()]
    if running(state) and all(component in state for component in wanted):
        print(f"stack already up in {args.workdir}", file=sys.stderr)
        return 0
    stop_recorded(state)
    stack = Stack(args.workdir, wanted).start()
    for component, sides in stack.describe().items():
        if isinstance(sides, dict):
            for side, info in sides.items():
                where = info.get("endpoint_url") or info.get("tracking_uri") or \
                    (f"{info['host']}:{info['port']}" if "port" in info else "") or \
                    ("mongodb wire server" if info.get("wire_server") else "external MongoDB")
                print(f"  {component:<7} {side:<7} {where}", file=sys.stderr)
    print(f"stack up; state in {stack.state_file}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
