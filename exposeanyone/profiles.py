"""Person profiles on disk: a folder per person, written atomically, validated when read.

Layout of ``<profiles>/<name>/``::

    profile.json          the card: name, references, per-detector calibration and training facts
    <detector>.safetensors   what each detector learned (e.g. the EXAM adapter tokens)

A profile is replaced as a whole (staging folder + rename, under a per-name lock), so a crash at any
moment leaves the old profile or the new one, and two enrollments of one name never interleave.
"""
from __future__ import annotations

import io
import json
import os
import re
import shutil
import time
import unicodedata
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

from .detectors.base import PersonModel
from .errors import ProfileError
from .storage import exclusive_lock, recover_directory, replace_directory

CARD_NAME = "profile.json"
PROFILE_FORMAT_VERSION = 1
MAX_NAME_LENGTH = 64
MAX_ARCHIVE_BYTES = 50_000_000
_FORBIDDEN = re.compile(r"[/\\:*?\"<>|\x00-\x1f\x7f]")


def validate_name(name: str) -> str:
    """The profile name, NFC-normalised, or :class:`ProfileError` if it could escape or confuse a folder."""
    if not isinstance(name, str):
        raise ProfileError("The person's name must be text.")
    cleaned = unicodedata.normalize("NFC", name).strip()
    if not cleaned:
        raise ProfileError("Give the person a name (letters, digits, spaces, '-', '_' or '.').")
    if len(cleaned) > MAX_NAME_LENGTH:
        raise ProfileError(f"The name is {len(cleaned)} characters long; use at most {MAX_NAME_LENGTH}.")
    if _FORBIDDEN.search(cleaned) or cleaned.startswith(".") or ".." in cleaned:
        raise ProfileError(f"The name {cleaned!r} contains a path separator, '..', a leading '.' or a control "
                           "character; use letters, digits, spaces, '-' and '_'.")
    if any(unicodedata.category(ch).startswith("C") for ch in cleaned):
        raise ProfileError(f"The name {cleaned!r} contains invisible control characters.")
    return cleaned


@dataclass
class Profile:
    """An enrolled person: the card and, per detector, what it learned."""

    name: str
    card: dict
    models: dict[str, PersonModel] = field(default_factory=dict)

    def calibration(self, detector: str) -> dict:
        return self.card.get("detectors", {}).get(detector, {}).get("calibration", {})


class ProfileStore:
    """The profiles folder."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def folder(self, name: str) -> Path:
        folder = (self.root / validate_name(name)).resolve()
        if folder.parent != self.root.resolve():
            raise ProfileError(f"The name {name!r} does not stay inside the profiles folder.")
        return folder

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir()
                      if p.is_dir() and not p.name.startswith(".") and (p / CARD_NAME).is_file())

    def exists(self, name: str) -> bool:
        return (self.folder(name) / CARD_NAME).is_file()

    def save(self, profile: Profile) -> Path:
        """Write the profile atomically, replacing any previous one of that name."""
        target = self.folder(profile.name)
        self.root.mkdir(parents=True, exist_ok=True)
        with exclusive_lock(self._lock_path(profile.name)):
            recover_directory(target)
            staging = target.with_name(f".{target.name}.staging-{os.getpid()}")
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir()
            for detector, person in profile.models.items():
                tensors = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in person.tensors.items()}
                save_file(tensors, str(staging / f"{detector}.safetensors"))
            card = dict(profile.card, name=profile.name, format_version=PROFILE_FORMAT_VERSION)
            card.setdefault("detectors", {})
            for detector, person in profile.models.items():
                card["detectors"].setdefault(detector, {})["info"] = person.info
            (staging / CARD_NAME).write_text(json.dumps(card, indent=2, ensure_ascii=False))
            for item in staging.iterdir():
                with open(item, "rb") as handle:
                    os.fsync(handle.fileno())
            replace_directory(staging, target)
        return target

    def load(self, name: str) -> Profile:
        """Read and validate a profile; a missing or damaged one raises :class:`ProfileError`."""
        folder = self.folder(name)
        recover_directory(folder)
        card_path = folder / CARD_NAME
        if not card_path.is_file():
            known = ", ".join(self.names()) or "none yet"
            raise ProfileError(f"No profile named {name!r} in {self.root} (enrolled: {known}). Enroll the person first.")
        try:
            card = json.loads(card_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise ProfileError(f"The profile {name!r} has an unreadable card ({CARD_NAME}): enroll again.") from None
        if not isinstance(card, dict) or card.get("format_version") != PROFILE_FORMAT_VERSION:
            raise ProfileError(f"The profile {name!r} is not a profile of this version of ExposeAnyone.")
        models = {}
        for detector, entry in card.get("detectors", {}).items():
            models[detector] = PersonModel(detector=detector, tensors=_load_tensors(folder, detector, name),
                                           info=entry.get("info", {}))
        return Profile(name=card.get("name", name), card=card, models=models)

    def delete(self, name: str) -> None:
        folder = self.folder(name)
        with exclusive_lock(self._lock_path(name)):
            shutil.rmtree(folder, ignore_errors=True)

    def export_zip(self, name: str) -> bytes:
        """The profile as a zip archive (a card and safetensors files only) for download."""
        folder = self.folder(name)
        self.load(name)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for item in sorted(folder.iterdir()):
                if item.name == CARD_NAME or item.suffix == ".safetensors":
                    archive.write(item, arcname=item.name)
        return buffer.getvalue()

    def import_zip(self, data: bytes, name: str | None = None) -> Profile:
        """Install a profile archive (from :meth:`export_zip`) after checking every member."""
        if len(data) > MAX_ARCHIVE_BYTES:
            raise ProfileError("The profile archive is too large to be a profile.")
        try:
            archive = zipfile.ZipFile(io.BytesIO(data))
            members = archive.infolist()
        except zipfile.BadZipFile:
            raise ProfileError("That file is not a profile archive (not a zip).") from None
        allowed = re.compile(r"^[A-Za-z0-9_-]+\.safetensors$|^profile\.json$")
        if not any(m.filename == CARD_NAME for m in members) or not all(allowed.match(m.filename) for m in members):
            raise ProfileError("The archive holds files other than profile.json and *.safetensors: not a profile.")
        if sum(m.file_size for m in members) > MAX_ARCHIVE_BYTES:
            raise ProfileError("The profile archive unpacks to too much data to be a profile.")
        try:
            card = json.loads(archive.read(CARD_NAME))
        except ValueError:
            raise ProfileError("The archive's profile.json is not valid JSON: not a profile.") from None
        if not isinstance(card, dict) or card.get("format_version") != PROFILE_FORMAT_VERSION:
            raise ProfileError("The archive is not a profile of this version of ExposeAnyone.")
        target_name = validate_name(name or card.get("name", ""))
        staging = self.root / f".import-{os.getpid()}-{time.monotonic_ns()}"
        staging.mkdir(parents=True)
        try:
            for member in members:
                (staging / member.filename).write_bytes(archive.read(member))
            models = {det: PersonModel(det, _load_tensors(staging, det, target_name), entry.get("info", {}))
                      for det, entry in card.get("detectors", {}).items()}
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        profile = Profile(name=target_name, card=card, models=models)
        self.save(profile)
        return profile

    def _lock_path(self, name: str) -> Path:
        return self.root / ".locks" / f"{validate_name(name)}.lock"


def _load_tensors(folder: Path, detector: str, name: str) -> dict[str, np.ndarray]:
    path = folder / f"{detector}.safetensors"
    if not re.fullmatch(r"[A-Za-z0-9_-]+", detector) or not path.is_file():
        raise ProfileError(f"The profile {name!r} lacks the weights of detector {detector!r}: enroll again.")
    try:
        tensors = load_file(str(path))
    except Exception:
        raise ProfileError(f"The profile {name!r} has damaged weights ({path.name}): enroll again.") from None
    for key, value in tensors.items():
        if not np.isfinite(value).all():
            raise ProfileError(f"The profile {name!r} holds NaN or infinite values in {key!r}: it was tampered "
                               "with or damaged; enroll again.")
    return tensors
