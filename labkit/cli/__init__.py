"""The `labkit` command line. Every subcommand lives in its own module of this package.

A module here defines ``register(subparsers)``, which adds its parser and sets
``func`` (called with the parsed arguments; its return value is the exit code).
Every command module is imported to build the parser, so modules import the lab's
modules (and through them torch, transformers, datasets) inside ``func`` only: that is why
the imports here are lazy, and ``labkit --help`` stays fast. Modules are discovered
automatically.
"""
from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="labkit",
        description="HCM-GRPO screening lab: data, models, training and evaluation for image aesthetic reasoning.",
    )
    from labkit import __version__

    parser.add_argument("--version", action="version", version=f"labkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "register"):
            module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from labkit.judge_base import JudgeError  # stdlib-only module: cheap

    try:
        code = args.func(args)
        sys.stdout.flush()  # a closed pipe shows up here, not at interpreter exit
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `labkit ... | head`: the reader has what it wanted. Point stdout at /dev/null so the
        # interpreter's final flush does not complain, and exit quietly.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (FileNotFoundError, ValueError, KeyError, JudgeError) as exc:
        # Bad input: a clear one-line error, not a traceback.
        if getattr(args, "debug", False):
            raise
        print(f"labkit {args.command}: error: {exc}", file=sys.stderr)
        return 1
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
