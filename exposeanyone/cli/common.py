"""What every command shares: output paths checked before work, progress on stderr, the profile store."""
from __future__ import annotations

import sys
from pathlib import Path

from ..core.config import profiles_dir
from ..core.errors import InputError

VIDEO_SUFFIXES = {".mp4", ".mov", ".webm", ".mkv", ".avi", ".flv", ".m4v"}


def profile_store(args):
    """The profile store named by ``--profiles``, else the default folder."""
    from ..profiles import ProfileStore

    return ProfileStore(Path(args.profiles) if args.profiles else profiles_dir())


def check_output(path: str | None) -> Path | None:
    """The path a command will write to, refused with one sentence if it cannot be (before any work)."""
    if path is None:
        return None
    out = Path(path)
    if out.exists() and out.is_dir():
        raise InputError(f"'{out}' is a folder; give a file name to write.")
    if not out.parent.exists():
        raise InputError(f"The folder of '{out}' does not exist.")
    return out


def progress_printer(enabled: bool = True):
    """A :data:`~exposeanyone.core.progress.ProgressFn` that rewrites one stderr line (only on a terminal)."""
    last = {"message": None}

    def report(fraction: float, message: str) -> None:
        if enabled and sys.stderr.isatty() and message != last["message"]:
            print(f"\r[{fraction:5.1%}] {message[:70]:<70}", end="", file=sys.stderr, flush=True)
            last["message"] = message
    return report


def videos_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file())
