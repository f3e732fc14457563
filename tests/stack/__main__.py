"""Bring the loopback stack up or down from the command line (used by ``make demo``).

    python -m tests.stack up   [--workdir .demo] [--with ssh,s3,mongo,mlflow[,minio,search,mongoeco]]
    python -m tests.stack status [--workdir .demo]
    python -m tests.stack down [--workdir .demo]
    python -m tests.stack seed [--workdir .demo]   (the demo platform on the source side)
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import sys

from tests.stack import demo_platform
from tests.stack.stack import COMPONENTS, DEFAULT_COMPONENTS, Stack, read_state, running, stop_recorded


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tests.stack", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["up", "down", "status", "seed"])
    parser.add_argument("--workdir", default=".demo")
    parser.add_argument("--with", dest="components", default=",".join(DEFAULT_COMPONENTS),
                        help=f"comma-separated components of {', '.join(COMPONENTS)} "
                             f"(default: {','.join(DEFAULT_COMPONENTS)})")
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
    clear_workdir(args.workdir)
    stack = Stack(args.workdir, wanted).start()
    for component, sides in stack.describe().items():
        if isinstance(sides, dict):
            for side, info in sides.items():
                print(f"  {component:<8} {side:<7} {where_it_answers(info)}", file=sys.stderr)
    print(f"stack up; state in {stack.state_file}", file=sys.stderr)
    return 0


def clear_workdir(workdir):
    """Remove what the last stack in ``workdir`` left: its servers' data (a database made with the last stack's
    passwords refuses the new ones), its keys, and the demo runs' state and work directories (a state file that says
    done would skip every step against the new, empty target)."""
    for name in COMPONENTS + ("stack.json", "inventory.yml"):
        path = os.path.join(workdir, name)
        if os.path.isdir(path):
            shutil.rmtree(path)
        elif os.path.exists(path):
            os.remove(path)
    for path in glob.glob(os.path.join(workdir, "*-state")) + glob.glob(os.path.join(workdir, "*-work")):
        shutil.rmtree(path)


def where_it_answers(info):
    """The address a component's side answers on, as a person would type it (no secrets)."""
    if "endpoint_url" in info:
        return f"{info['endpoint_url']} ({info['implementation']})"
    if "uri" in info:
        host = info["uri"].rsplit("@", 1)[-1].split("/", 1)[0]
        return f"mongodb://{host} ({info['server']})"
    return info.get("url") or info.get("tracking_uri") or f"{info['host']}:{info['port']}"


if __name__ == "__main__":
    sys.exit(main())
