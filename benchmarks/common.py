"""Shared helpers of the benchmark scripts: where the data is, how results are written."""
from __future__ import annotations

import json
import platform
import resource
import sys
import time
from pathlib import Path

from exposeanyone.core.config import avdata_dir

RESULTS_DIR = Path(__file__).resolve().parent / "results"
ROOT = RESULTS_DIR.parent.parent


def require_avdata(path: str | None) -> Path:
    root = Path(path) if path else avdata_dir()
    if root is None or not (root / "MANIFEST.tsv").is_file():
        sys.exit("This benchmark needs the avdata corpus: pass --avdata DIR or set EXPOSEANYONE_AVDATA.")
    return root


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def command_line() -> str:
    """How this benchmark was started, with the script's path from the repository root wherever it ran."""
    script = Path(sys.argv[0]).resolve()
    if script.is_relative_to(ROOT):
        script = script.relative_to(ROOT)
    return " ".join(["python", str(script), *sys.argv[1:]])


def write_result(name: str, payload: dict) -> Path:
    """Write ``results/<name>.json`` with the machine and the command that produced it."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    payload = {"benchmark": name, "command": command_line(),
               "date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, {platform.processor() or ''}".strip(", "),
               **payload}
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


def print_table(headers: list[str], rows: list[list]) -> None:
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(headers)]
    print("  ".join(str(h).ljust(w) for h, w in zip(headers, widths)))
    for row in rows:
        print("  ".join(str(v).ljust(w) for v, w in zip(row, widths)))
