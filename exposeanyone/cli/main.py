"""The ``exposeanyone`` command line.

Exit codes: 0 success, 2 bad input (one line on stderr says what is wrong and what to do; nothing is
written), 1 an unexpected error (a bug: its traceback is shown).
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys

from ..core.config import VERSION
from ..core.errors import InputError
from ..core.memory import keep_resident_memory_low
from .train import add_training_commands
from .use import add_use_commands


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("GLOG_minloglevel", "2")  # MediaPipe's C++ logging would drown the summary
    keep_resident_memory_low()
    parser = build_parser()
    args = parser.parse_args(argv)
    with native_stderr_silenced():
        try:
            return int(args.handler(args) or 0)
        except InputError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("error: interrupted; nothing was written.", file=sys.stderr)
            return 130


@contextlib.contextmanager
def native_stderr_silenced():
    """Send what C++ libraries print straight to file descriptor 2 to /dev/null, keeping Python's stderr.

    MediaPipe and TFLite log their start-up to fd 2 whatever GLOG_minloglevel says, which would bury the
    one-line error a user must see. Python's messages (errors, progress, a bug's traceback) still show.
    """
    try:
        real_stderr = sys.stderr.fileno() == 2
    except (AttributeError, OSError, ValueError):  # a test's captured stderr has no descriptor
        real_stderr = False
    if not real_stderr:
        yield
        return
    python_stderr = sys.stderr
    python_stderr.flush()
    saved = os.dup(2)
    sys.stderr = os.fdopen(os.dup(saved), "w", buffering=1, encoding=python_stderr.encoding,
                           errors="backslashreplace")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        sys.stderr.close()
        sys.stderr = python_stderr


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="exposeanyone", description=(
        "Check whether a talking-head video of an enrolled person is genuine."))
    parser.add_argument("--version", action="version", version=f"%(prog)s {VERSION}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    add_use_commands(commands)
    add_training_commands(commands)
    return parser


if __name__ == "__main__":
    sys.exit(main())
