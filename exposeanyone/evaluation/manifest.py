"""Reading evaluation / training manifests (tab-separated, one clip per row)."""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import InputError

REQUIRED_COLUMNS = ("file", "identity", "split", "label", "manipulation")
SPLITS = ("pretrain", "ref", "test")
LABELS = ("real", "fake")


@dataclass(frozen=True)
class ManifestRow:
    """One clip of a manifest; ``path`` is absolute (the manifest's ``file`` is relative to it)."""

    path: Path
    identity: str
    split: str
    label: str
    manipulation: str
    session: str = ""
    duration_s: float = 0.0

    @property
    def is_real(self) -> bool:
        return self.label == "real"


def read_manifest(path: str | Path) -> list[ManifestRow]:
    """All rows of a manifest, validated; paths resolved against the manifest's folder."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"Manifest '{path}' does not exist.")
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle, delimiter="\t")
        missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise InputError(f"Manifest '{path.name}' lacks the column(s) {', '.join(missing)}; "
                             f"its header must name {', '.join(REQUIRED_COLUMNS)}.")
        rows = [_row(path.parent, record, line) for line, record in enumerate(reader, start=2)]
    return rows


def _row(root: Path, record: dict, line: int) -> ManifestRow:
    split, label = record["split"].strip(), record["label"].strip()
    if split not in SPLITS or label not in LABELS:
        raise InputError(f"Manifest line {line}: split must be one of {SPLITS} and label one of {LABELS}, "
                         f"got {split!r} / {label!r}.")
    duration = record.get("duration_s") or "0"
    return ManifestRow(path=(root / record["file"].strip()).resolve(), identity=record["identity"].strip(),
                       split=split, label=label, manipulation=record["manipulation"].strip() or "none",
                       session=(record.get("session") or "").strip(), duration_s=float(duration))
