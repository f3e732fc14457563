"""Where ``scripts/build-servers.sh`` put the servers it built from the package registries.

The versions live in ``scripts/server-versions.sh`` (one place for the build and the stack);
the builds in ``$SERVERS_DIR`` (default ``.build/servers``), one directory per name and version.
"""

from __future__ import annotations

import os
import re

from tests.stack.process import StackError

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


def versions():
    """``{"ferretdb": "v1.24.2", ...}`` from scripts/server-versions.sh."""
    with open(os.path.join(REPO, "scripts", "server-versions.sh"), encoding="utf-8") as handle:
        pairs = re.findall(r"^([A-Z0-9]+)_VERSION=(\S+)$", handle.read(), re.MULTILINE)
    return {name.lower(): version for name, version in pairs}


def build_dir(name):
    """The finished build of ``name``; a clear error naming the command when it is missing."""
    root = os.environ.get("SERVERS_DIR") or os.path.join(REPO, ".build", "servers")
    path = os.path.join(root if os.path.isabs(root) else os.path.join(REPO, root),
                        f"{name}-{versions()[name]}")
    if not os.path.exists(os.path.join(path, ".built")):
        raise StackError(f"{name} is not built at {path}: run 'make deps' "
                         f"(or 'bash scripts/build-servers.sh {name}')")
    return path


def binary(name):
    """The executable ``name`` of a Go build (ferretdb, minio, s5cmd)."""
    return os.path.join(build_dir(name), name)
