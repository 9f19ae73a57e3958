"""Person profiles on disk: a folder per person, written atomically, validated when read.

Layout of ``<profiles>/<name>/``::

    profile.json          the card: name, references, per-detector calibration and training facts
    <detector>.safetensors   what each detector learned (e.g. the EXAM adapter tokens)

A profile is replaced as a whole (staging folder + rename, under a per-name lock), so a crash at any
moment leaves the old profile or the new one, and two enrollments of one name never interleave.
"""
from __future__ import annotations

import contextlib
import glob
import io
import json
import os
import re
import shutil
import time
import unicodedata
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

from .core.errors import ProfileError
from .core.storage import exclusive_lock, recover_directory, replace_directory
from .detectors.base import Calibration, PersonModel

CARD_NAME = "profile.json"
PROFILE_FORMAT_VERSION = 1
MAX_NAME_LENGTH = 64
MAX_NAME_BYTES = 200
"""UTF-8 bytes of a name: 64 emoji are 256 bytes, over the 255 a file name may have, and the staging and
backup folders add up to 17 more."""
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
    if len(cleaned.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        raise ProfileError(f"The name takes {len(cleaned.encode('utf-8', 'surrogatepass'))} bytes as UTF-8; use "
                           f"a shorter one (at most {MAX_NAME_BYTES} bytes, e.g. {MAX_NAME_BYTES // 4} emoji).")
    if _FORBIDDEN.search(cleaned) or cleaned.startswith(".") or ".." in cleaned:
        raise ProfileError(f"The name {cleaned!r} contains a path separator, '..', a leading '.' or a control "
                           "character; use letters, digits, spaces, '-' and '_'.")
    if any(unicodedata.category(ch).startswith("C") for ch in cleaned):
        raise ProfileError(f"The name {cleaned!r} contains invisible control characters.")
    return cleaned


@dataclass
class ReferenceEntry:
    """One reference clip the person was enrolled from, as the card records it."""

    name: str
    duration_s: float
    usable_s: float
    speech_ratio: float
    sha256: str | None = None
    face_detected_ratio: float | None = None
    extra: dict = field(default_factory=dict)
    """Keys this version does not know (kept, so that re-saving a newer card loses nothing)."""

    def to_json(self) -> dict:
        data = {"name": self.name, "sha256": self.sha256, "duration_s": self.duration_s, "usable_s": self.usable_s,
                "face_detected_ratio": self.face_detected_ratio, "speech_ratio": self.speech_ratio}
        return {**self.extra, **{key: value for key, value in data.items() if value is not None}}

    @classmethod
    def from_json(cls, data: dict) -> "ReferenceEntry":
        known = {f.name for f in fields(cls)} - {"extra"}
        return cls(name=data["name"], duration_s=data["duration_s"], usable_s=data["usable_s"],
                   speech_ratio=data["speech_ratio"], sha256=data.get("sha256"),
                   face_detected_ratio=data.get("face_detected_ratio"),
                   extra={key: value for key, value in data.items() if key not in known})


@dataclass
class DetectorEntry:
    """What the card records about one detector the person was enrolled with."""

    calibration: Calibration | None = None
    fingerprint: str | None = None
    """The weights and score version it was made with (stored as ``base_model_sha256``; see
    :func:`~exposeanyone.detectors.registry.profile_fingerprint`)."""
    enroll_seconds: float | None = None
    info: dict | None = None
    """The detector's :attr:`PersonModel.info`, written by :meth:`ProfileStore.save`."""
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        data = {"calibration": self.calibration.to_json() if self.calibration is not None else None,
                "base_model_sha256": self.fingerprint, "enroll_seconds": self.enroll_seconds, "info": self.info}
        return {**self.extra, **{key: value for key, value in data.items() if value is not None}}

    @classmethod
    def from_json(cls, data: dict) -> "DetectorEntry":
        known = {"calibration", "base_model_sha256", "enroll_seconds", "info"}
        calibration = data.get("calibration")
        return cls(calibration=Calibration.from_json(calibration) if calibration is not None else None,
                   fingerprint=data.get("base_model_sha256"), enroll_seconds=data.get("enroll_seconds"),
                   info=data.get("info"), extra={key: value for key, value in data.items() if key not in known})


@dataclass
class ProfileCard:
    """The card of a profile (``profile.json``): who, from which footage, and per detector its calibration.

    :meth:`to_json` and :meth:`from_json` own the file's layout (checked against :data:`CARD_SCHEMA` when
    read from disk). Optional fields a card lacks come back as ``None`` or empty and are not written back;
    keys this version does not know are kept in ``extra`` and written back unchanged, so that a profile
    from a newer version, re-saved or passed through export and import here, loses nothing.
    """

    created: str | None = None
    usable_reference_seconds: float | None = None
    warnings: list[str] = field(default_factory=list)
    references: list[ReferenceEntry] = field(default_factory=list)
    detectors: dict[str, DetectorEntry] = field(default_factory=dict)
    name: str | None = None
    """Written by :meth:`ProfileStore.save`; the folder's name is what counts when read."""
    format_version: int = PROFILE_FORMAT_VERSION
    extra: dict = field(default_factory=dict)

    def calibration(self, detector: str) -> Calibration | None:
        entry = self.detectors.get(detector)
        return entry.calibration if entry is not None else None

    def to_json(self) -> dict:
        data = {"created": self.created, "warnings": list(self.warnings),
                "references": [reference.to_json() for reference in self.references],
                "detectors": {name: entry.to_json() for name, entry in self.detectors.items()},
                "usable_reference_seconds": self.usable_reference_seconds, "name": self.name,
                "format_version": self.format_version}
        return {**self.extra, **{key: value for key, value in data.items() if value is not None}}

    @classmethod
    def from_json(cls, data: dict) -> "ProfileCard":
        """The card from its JSON (every optional field may be missing); see :meth:`checked` for disk input."""
        known = {f.name for f in fields(cls)} - {"extra"}
        return cls(created=data.get("created"), usable_reference_seconds=data.get("usable_reference_seconds"),
                   warnings=list(data.get("warnings", [])),
                   references=[ReferenceEntry.from_json(r) for r in data.get("references", [])],
                   detectors={name: DetectorEntry.from_json(entry) for name, entry in data.get("detectors", {}).items()},
                   name=data.get("name"), format_version=data.get("format_version", PROFILE_FORMAT_VERSION),
                   extra={key: value for key, value in data.items() if key not in known})

    @classmethod
    def checked(cls, data, what: str) -> "ProfileCard":
        """:meth:`from_json` of a card read from a file, refusing another version or a damaged card with a
        :class:`ProfileError` that starts with ``what``."""
        if not isinstance(data, dict) or data.get("format_version") != PROFILE_FORMAT_VERSION:
            raise ProfileError(f"{what} is not a profile of this version of ExposeAnyone.")
        if not _fits(data, CARD_SCHEMA):
            raise ProfileError(f"{what} has a damaged card ({CARD_NAME}: a field is missing or of the wrong kind); "
                               "it was edited or damaged: enroll the person again.")
        return cls.from_json(data)


@dataclass
class Profile:
    """An enrolled person: the card and, per detector, what it learned (a JSON card is read as a
    :class:`ProfileCard`)."""

    name: str
    card: ProfileCard
    models: dict[str, PersonModel] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.card, dict):
            self.card = ProfileCard.from_json(self.card)

    def calibration(self, detector: str) -> dict:
        """The detector's calibration as JSON (empty if the card has none)."""
        calibration = self.card.calibration(detector)
        return calibration.to_json() if calibration is not None else {}


class ProfileExists(ProfileError):
    """A profile of that name exists and replacing it was not asked for."""


class ProfileStore:
    """The profiles folder.

    ``where`` names the folder in messages (default: its path), e.g. "this session's profiles" where the path
    should not be shown. ``reserved`` names belong to another store shown beside this one and are refused,
    saying they are ``reserved_as`` (e.g. "the app's ready example person"); a ``read_only`` store (such as
    that person's, shipped in the repository) is read without taking locks and refuses every change.
    """

    def __init__(self, root: str | Path, where: str | None = None, *, reserved: Iterable[str] = (),
                 reserved_as: str = "reserved", read_only: bool = False) -> None:
        self.root = Path(root)
        self.where = where or str(self.root)
        self.reserved = frozenset(validate_name(name) for name in reserved)
        self.reserved_as = reserved_as
        self.read_only = read_only

    def reserving(self, names: Iterable[str], reserved_as: str) -> "ProfileStore":
        """This folder with ``names`` refused as well (see the class notes)."""
        return ProfileStore(self.root, self.where, reserved=self.reserved | set(names), reserved_as=reserved_as,
                            read_only=self.read_only)

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

    def refuse_existing(self, name: str, how: str = "pass replace=True") -> None:
        """:class:`ProfileExists` when a profile of that name exists: one sentence ending with ``how`` to
        overwrite it (e.g. "tick 'Replace'", "pass --replace")."""
        if self.exists(name):
            raise ProfileExists(f"A profile named {validate_name(name)!r} exists; {how} to overwrite it.")

    def refuse_reserved(self, name: str) -> None:
        """:class:`ProfileExists` when ``name`` is reserved, or :class:`ProfileError` when this store is read-only."""
        if self.read_only:
            raise ProfileError(f"The profiles of {self.where} cannot be changed.")
        if validate_name(name) in self.reserved:
            raise ProfileExists(f"{validate_name(name)!r} is {self.reserved_as} and cannot be replaced; "
                                "choose another name.")

    def save(self, profile: Profile, replace: bool = True, how: str = "pass replace=True") -> Path:
        """Write the profile atomically, replacing any previous one of that name, or with ``replace=False``
        refusing (:class:`ProfileExists`) when one exists: checked under the name's lock, so of two saves
        of a new name one wins and the other is refused."""
        target = self.folder(profile.name)
        self.refuse_reserved(profile.name)
        self.root.mkdir(parents=True, exist_ok=True)
        with exclusive_lock(self._lock_path(profile.name)):
            recover_directory(target)
            if not replace:
                self.refuse_existing(profile.name, how)
            for pattern in (".staging-*", ".deleted-*"):  # left by a killed save or delete of this very name
                for stale in target.parent.glob(f".{glob.escape(target.name)}{pattern}"):
                    shutil.rmtree(stale, ignore_errors=True)
            staging = target.with_name(f".{target.name}.staging-{os.getpid()}")
            try:
                staging.mkdir()
                self._write_staging(profile, staging)
                replace_directory(staging, target)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
                recover_directory(target)  # an error between the swap's two renames puts the old one back
        return target

    @staticmethod
    def _write_staging(profile: Profile, staging: Path) -> None:
        for detector, person in profile.models.items():
            tensors = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in person.tensors.items()}
            save_file(tensors, str(staging / f"{detector}.safetensors"))
        detectors = dict(profile.card.detectors)
        for detector, person in profile.models.items():
            detectors[detector] = replace(detectors.get(detector) or DetectorEntry(), info=person.info)
        card = replace(profile.card, name=profile.name, format_version=PROFILE_FORMAT_VERSION, detectors=detectors)
        (staging / CARD_NAME).write_text(json.dumps(card.to_json(), indent=2, ensure_ascii=False), encoding="utf-8")
        for item in staging.iterdir():
            with open(item, "rb") as handle:
                os.fsync(handle.fileno())

    def load(self, name: str) -> Profile:
        """Read and validate a profile; a missing or damaged one raises :class:`ProfileError`."""
        folder = self.folder(name)
        if not (folder / CARD_NAME).is_file() and not backup_of(folder).exists():
            known = ", ".join(self.names()) or "none yet"
            raise ProfileError(f"No profile named {name!r} in {self.where} (enrolled: {known}). Enroll the person first.")
        # under the lock: a save swapping folders meanwhile would otherwise mix its old card with new weights
        with self._reading(name):
            return self._read(folder, name)

    def _read(self, folder: Path, name: str) -> Profile:
        """The profile in ``folder``, validated; call with the name's lock held."""
        recover_directory(folder)
        try:
            data = json.loads((folder / CARD_NAME).read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError):
            raise ProfileError(f"The profile {name!r} has an unreadable card ({CARD_NAME}): enroll again.") from None
        card = ProfileCard.checked(data, f"The profile {name!r}")
        models = {detector: PersonModel(detector=detector, tensors=_load_tensors(folder, detector, name),
                                        info=entry.info or {})
                  for detector, entry in card.detectors.items()}
        return Profile(name=folder.name, card=card, models=models)

    def delete(self, name: str) -> None:
        """Remove a profile; it vanishes at once (a rename), so a crash never leaves half of it."""
        folder = self.folder(name)
        self.refuse_reserved(name)
        with exclusive_lock(self._lock_path(name)):
            recover_directory(folder)
            if folder.exists():
                doomed = folder.with_name(f".{folder.name}.deleted-{os.getpid()}")
                os.replace(folder, doomed)
                shutil.rmtree(doomed, ignore_errors=True)

    def export_zip(self, name: str) -> bytes:
        """The profile as a zip archive (a card and safetensors files only) for download."""
        folder = self.folder(name)
        self.load(name)  # a clear error for a missing or damaged profile, before taking the lock
        buffer = io.BytesIO()
        with self._reading(name):
            self._read(folder, name)
            with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
                for item in sorted(folder.iterdir()):
                    if item.name == CARD_NAME or item.suffix == ".safetensors":
                        archive.write(item, arcname=item.name)
        return buffer.getvalue()

    def import_zip(self, data: bytes, name: str | None = None, replace: bool = True,
                   how: str = "pass replace=True") -> Profile:
        """Install a profile archive (from :meth:`export_zip`) after checking every member; ``replace=False``
        refuses to overwrite a profile of that name (see :meth:`save`), before unpacking anything."""
        if len(data) > MAX_ARCHIVE_BYTES:
            raise ProfileError("The profile archive is too large to be a profile.")
        contents = _unpack_archive(data)
        try:
            data = json.loads(contents[CARD_NAME])
        except (ValueError, RecursionError):
            raise ProfileError("The archive's profile.json is not valid JSON: not a profile.") from None
        card = ProfileCard.checked(data, "The archive")
        target_name = validate_name(name or card.name or "")
        self.refuse_reserved(target_name)
        if not replace:
            self.refuse_existing(target_name, how)
        staging = self.root / f".import-{os.getpid()}-{time.monotonic_ns()}"
        staging.mkdir(parents=True)
        try:
            for filename, payload in contents.items():
                (staging / filename).write_bytes(payload)
            models = {det: PersonModel(det, _load_tensors(staging, det, target_name), entry.info or {})
                      for det, entry in card.detectors.items()}
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        profile = Profile(name=target_name, card=card, models=models)
        self.save(profile, replace=replace, how=how)
        return profile

    def _reading(self, name: str):
        """The name's lock, or none for a read-only store: nothing swaps its folders, which may not be writable."""
        return contextlib.nullcontext() if self.read_only else exclusive_lock(self._lock_path(name))

    def _lock_path(self, name: str) -> Path:
        return self.root / ".locks" / f"{validate_name(name)}.lock"


def backup_of(folder: Path) -> Path:
    """Where :func:`~exposeanyone.core.storage.replace_directory` keeps the old folder during a swap."""
    return folder.with_name(f".{folder.name}.old")


def _unpack_archive(data: bytes) -> dict[str, bytes]:
    """The members of a profile archive, after checking their names and sizes before unpacking any."""
    allowed = re.compile(r"^[A-Za-z0-9_-]+\.safetensors$|^profile\.json$")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
            if not any(m.filename == CARD_NAME for m in members) or not all(allowed.match(m.filename)
                                                                           for m in members):
                raise ProfileError("The archive holds files other than profile.json and *.safetensors: "
                                   "not a profile.")
            if sum(m.file_size for m in members) > MAX_ARCHIVE_BYTES:
                raise ProfileError("The profile archive unpacks to too much data to be a profile.")
            return {m.filename: archive.read(m) for m in members}
    except ProfileError:
        raise
    except zipfile.BadZipFile as error:
        if "not a zip" in str(error).lower():
            raise ProfileError("That file is not a profile archive (not a zip).") from None
        raise ProfileError("The profile archive is damaged (it cannot be unpacked): export it again.") from None
    except Exception:  # zlib, CRC, truncation, encryption...: any malformed archive is one sentence
        raise ProfileError("The profile archive is damaged (it cannot be unpacked): export it again.") from None


NUMBER = (int, float)
CARD_SCHEMA = {
    "format_version": int, "?name": str, "?created": str, "?usable_reference_seconds": NUMBER, "?warnings": [str],
    "?references": [{"name": str, "?sha256": str, "duration_s": NUMBER, "usable_s": NUMBER,
                     "?face_detected_ratio": NUMBER, "speech_ratio": NUMBER}],
    "?detectors": {str: {"?info": dict, "?base_model_sha256": str, "?enroll_seconds": NUMBER,
                         "?calibration": {"threshold": NUMBER, "false_alarm_rate": NUMBER,
                                          "?genuine_scores": [NUMBER], "?method": str}}},
}
"""What a card holds and :class:`ProfileCard` reads: a dict is a record (keys with '?' optional, others required),
``{str: schema}`` a mapping of any names, ``[schema]`` a list of such items. Extra keys are allowed."""


def _fits(value, schema) -> bool:
    if isinstance(schema, list):
        return isinstance(value, list) and all(_fits(item, schema[0]) for item in value)
    if isinstance(schema, dict):
        if not isinstance(value, dict):
            return False
        if str in schema:
            return all(isinstance(key, str) and _fits(item, schema[str]) for key, item in value.items())
        return all(_fits(value[key.lstrip("?")], sub) if key.lstrip("?") in value else key.startswith("?")
                   for key, sub in schema.items())
    return isinstance(value, schema) and not isinstance(value, bool)  # JSON true is no number


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
