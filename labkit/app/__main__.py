"""``python -m labkit.app ...``: the same as ``labkit app ...`` (see `labkit.cli.app`)."""
import sys

from labkit.cli import main

if __name__ == "__main__":  # pragma: no cover - thin wrapper
    sys.exit(main(["app", *sys.argv[1:]]))
