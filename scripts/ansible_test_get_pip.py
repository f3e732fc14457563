"""Offline stand-in for the get-pip.py that ansible-test downloads to bootstrap its venvs.

ansible-test runs this file as ``__main__`` inside a new virtualenv that has no pip, with
get-pip's arguments (pip options, ``pip==X`` and ``--no-setuptools``/``--no-wheel``).
Here pip comes from the interpreter's own ensurepip; then the requested packages are
installed from the configured package index, as get-pip would do.
"""

import subprocess
import sys

GET_PIP_ONLY = {"--no-setuptools": "setuptools", "--no-wheel": "wheel"}


def main(argv):
    skipped = {GET_PIP_ONLY[arg] for arg in argv if arg in GET_PIP_ONLY}
    args = [arg for arg in argv if arg not in GET_PIP_ONLY]
    args += [name for name in ("setuptools", "wheel") if name not in skipped]
    # In a child process: ensurepip points PIP_CONFIG_FILE at /dev/null in the process that
    # runs it, which would hide the index and CA settings from the install below.
    status = subprocess.call([sys.executable, "-m", "ensurepip", "--upgrade"],
                             stdout=subprocess.DEVNULL)
    if status:
        return status
    return subprocess.call([sys.executable, "-m", "pip", "install", "--quiet"] + args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
