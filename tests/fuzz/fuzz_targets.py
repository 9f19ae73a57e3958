"""Fuzz targets: the readers of files that come from users, fed mutated copies of valid files.

Each target owns a few valid seed files, a hypothesis strategy that mutates them, and a ``check`` that
runs the reader and fails on anything but the documented outcome: the file is read, or the reader raises
an :class:`~exposeanyone.core.errors.InputError` subclass (one readable sentence). A crash, another exception
type, a hang or a write outside the profiles folder is a finding.

Used by ``test_fuzz_quick.py`` (a few examples per target in the normal suite) and ``run_fuzz.py``
(minutes per target).
"""
from __future__ import annotations

import contextlib
import io
import json
import math
import re
import signal
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import strategies as st

from exposeanyone.core.errors import InputError, ProfileError

EXAMPLE_TIME_LIMIT_S = 60
"""An input that keeps a reader busy longer than this counts as a hang."""
INTERESTING_INTEGERS = (0, 1, 2, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF, 0x10000, 0x7FFFFFFF,
                        0x80000000, 0xFFFFFFFF)
"""Boundary values written over length and size fields, where parsers go wrong."""


class SeedBytes(bytes):
    """A seed file's bytes that print short (hypothesis shows strategy arguments in its messages)."""

    def __repr__(self) -> str:
        return f"<{len(self)} seed bytes>"


class Hang(Exception):
    """A reader ran past :data:`EXAMPLE_TIME_LIMIT_S`."""


@contextlib.contextmanager
def time_limit(seconds: float):
    """Raise :class:`Hang` in the main thread when the block runs longer than ``seconds``."""
    def expire(signum, frame):
        raise Hang(f"the reader ran for more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# ----------------------------------------------------------------------------------------- mutations
@st.composite
def mutated_bytes(draw, seed: bytes, max_ops: int = 6, hot_prefix: int = 4096) -> bytes:
    """``seed`` after a few byte-level edits, biased towards the first ``hot_prefix`` bytes (headers)."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, max_ops))):
        size = len(data)
        limit = max(0, min(size, hot_prefix) - 1) if draw(st.booleans()) else max(0, size - 1)
        at = draw(st.integers(0, limit))
        op = draw(st.sampled_from(("flip", "byte", "integer", "delete", "insert", "truncate", "duplicate")))
        if op == "flip" and size:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "byte" and size:
            data[at] = draw(st.integers(0, 255))
        elif op == "integer" and size:
            width = draw(st.sampled_from((1, 2, 4, 8)))
            value = draw(st.sampled_from(INTERESTING_INTEGERS)) % (1 << (8 * width))
            data[at:at + width] = value.to_bytes(width, draw(st.sampled_from(("big", "little"))))
        elif op == "delete":
            del data[at:at + draw(st.integers(1, 64))]
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=64))
        elif op == "truncate":
            del data[at:]
        elif op == "duplicate" and size:
            length = draw(st.integers(1, 256))
            source = draw(st.integers(0, max(0, size - 1)))
            data[at:at] = data[source:source + length]
    return bytes(data)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12)
"""Any JSON value (NaN and infinities included: Python's json writes and reads them)."""


@st.composite
def mutated_json(draw, document: Any, max_ops: int = 3) -> Any:
    """``document`` with a few of its values replaced by arbitrary JSON or removed."""
    document = json.loads(json.dumps(document))
    for _ in range(draw(st.integers(1, max_ops))):
        parent, key = None, None
        node = document
        while isinstance(node, (dict, list)) and node and draw(st.integers(0, 3)):
            keys = list(node) if isinstance(node, dict) else list(range(len(node)))
            parent, key = node, draw(st.sampled_from(keys))
            node = node[key]
        replacement = draw(JSON_VALUES)
        if parent is None:
            document = replacement
        elif isinstance(parent, dict) and draw(st.integers(0, 4)) == 0:
            del parent[key]
        else:
            parent[key] = replacement
    return document


def zip_members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def make_zip(members: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, payload in members.items():
            archive.writestr(name, payload)
    return buffer.getvalue()


@st.composite
def mutated_zip(draw, seed: bytes, json_members: tuple[str, ...] = (),
                compression: int = zipfile.ZIP_STORED) -> bytes:
    """A zip whose members are edited and re-packed with valid checksums, so the edits reach the parser
    behind the zip layer (raw byte edits mostly stop at a CRC check)."""
    members = zip_members(seed)
    names = sorted(members)
    for _ in range(draw(st.integers(1, 3))):
        action = draw(st.sampled_from(("bytes", "json", "drop", "add", "rename")))
        name = draw(st.sampled_from(names))
        if action == "json" and name in json_members and name in members:
            try:
                document = json.loads(members[name])
            except ValueError:  # already broken by an earlier edit
                continue
            members[name] = json.dumps(draw(mutated_json(document))).encode()
        elif action == "bytes" and name in members:
            members[name] = draw(mutated_bytes(members[name], hot_prefix=256))
        elif action == "drop":
            members.pop(name, None)
        elif action == "add":
            members[draw(st.sampled_from(names + ["../escape.safetensors", "/abs.safetensors", "x.npy"]))] = \
                draw(st.binary(max_size=64))
        elif action == "rename" and name in members:
            members[draw(st.sampled_from(names + ["other.safetensors", "profile.JSON"]))] = members.pop(name)
    return make_zip(members, compression)


# ----------------------------------------------------------------------------------------- targets
class Target:
    """A reader under fuzz: ``setup`` once, then ``check(example)`` per drawn example."""

    name = ""

    def setup(self, workdir: Path) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.outcomes: Counter[str] = Counter()
        """How examples ended: "read" or the error class and the first words of its message."""

    def refused(self, error: InputError) -> None:
        """Count a clean refusal and check it is one readable sentence."""
        message = str(error)
        assert message and "\n" not in message and "Traceback" not in message, repr(message)
        words = " ".join(re.sub(r"'[^']*'", "'…'", message).split()[:5])
        self.outcomes[f"{type(error).__name__}: {words}"] += 1

    def strategy(self) -> st.SearchStrategy:
        raise NotImplementedError

    def check(self, example) -> None:
        raise NotImplementedError


class ContainerTarget(Target):
    """``media.probe`` then ``extract.extract_clip`` on mutated bytes of a small valid mp4."""

    name = "container"

    def setup(self, workdir: Path) -> None:
        from exposeanyone.demo.synthetic import make_talking_clip

        super().setup(workdir)
        self.seeds = [SeedBytes(make_talking_clip(self.workdir / "seed.mp4", 0.6, seed=0, size=64).read_bytes()),
                      SeedBytes(make_talking_clip(self.workdir / "seed.mkv", 0.6, seed=1, size=64).read_bytes())]

    def strategy(self) -> st.SearchStrategy:
        return st.sampled_from(range(len(self.seeds))).flatmap(
            lambda which: st.tuples(st.just(which), mutated_bytes(self.seeds[which])))

    def check(self, example) -> None:
        from exposeanyone.media.decode import probe
        from exposeanyone.media.extract import extract_clip

        which, data = example
        path = self.workdir / ("input.mp4" if which == 0 else "input.mkv")
        path.write_bytes(data)
        try:
            with time_limit(EXAMPLE_TIME_LIMIT_S):
                probe(path)
                clip = extract_clip(path, use_cache=False)
        except InputError as error:
            self.refused(error)
            return
        self.outcomes["read"] += 1
        assert clip.num_frames >= 1 and clip.track.num_frames == clip.audio.num_frames
        assert np.isfinite(clip.track.expressions()).all() and np.isfinite(clip.audio.mel).all()


class TrackTarget(Target):
    """``Track.load`` on mutated ``.npz`` track files."""

    name = "track"
    ARRAY_MEMBERS = ("blendshapes.npy", "pose.npy", "landmarks.npy", "mouth.npy", "valid.npy", "interpolated.npy")

    def setup(self, workdir: Path) -> None:
        from synthetic_arrays import make_track

        super().setup(workdir)
        seed_path = self.workdir / "seed.npz"
        make_track(6, seed=0, valid=np.array([True, True, False, True, True, True])).save(seed_path)
        self.seed = SeedBytes(seed_path.read_bytes())

    def strategy(self) -> st.SearchStrategy:
        from hypothesis.extra import numpy as hnp

        odd_array = hnp.arrays(
            dtype=st.sampled_from((np.float32, np.float64, np.float16, np.int64, np.uint8, np.bool_, np.complex64,
                                   np.dtype("U3"))),
            shape=hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=7))

        @st.composite
        def replaced_member(draw):
            members = zip_members(self.seed)
            name = draw(st.sampled_from(self.ARRAY_MEMBERS + ("meta_json.npy",)))
            if name == "meta_json.npy" and draw(st.booleans()):
                meta = json.loads(bytes(np.load(io.BytesIO(members[name]))).decode())
                text = json.dumps(draw(mutated_json(meta))).encode()
                array = np.frombuffer(text, np.uint8)
            else:
                array = draw(odd_array)
            buffer = io.BytesIO()
            np.save(buffer, array, allow_pickle=False)
            members[name] = buffer.getvalue()
            return make_zip(members)

        return st.one_of(mutated_bytes(self.seed), mutated_zip(self.seed), replaced_member())

    def check(self, example: bytes) -> None:
        from exposeanyone.media.track import N_LANDMARKS, Track

        path = self.workdir / "input.npz"
        path.write_bytes(example)
        try:
            with time_limit(EXAMPLE_TIME_LIMIT_S):
                track = Track.load(path)
        except InputError as error:
            self.refused(error)
            return
        self.outcomes["read"] += 1
        frames = track.num_frames
        assert track.blendshapes.shape == (frames, 52) and track.pose.shape == (frames, 6)
        assert track.landmarks.shape == (frames, N_LANDMARKS, 3) and track.mouth.shape == (frames, 32, 32)
        assert math.isfinite(track.fps) and track.fps > 0
        assert np.isfinite(track.expressions()).all()


def _profile_seed(root: Path, name: str = "Ada") -> Path:
    from exposeanyone.detectors.base import PersonModel
    from exposeanyone.profiles import Profile, ProfileStore

    person = PersonModel("exam", {"adapter_tokens": np.linspace(-1, 1, 16, dtype=np.float32).reshape(2, 8)},
                         {"backbone": "0123456789abcdef", "personalize_steps": 4})
    card = {"created": "2025-01-01T00:00:00Z", "warnings": [], "usable_reference_seconds": 12.0,
            "references": [{"name": "a.mp4", "sha256": "00" * 32, "duration_s": 6.0, "usable_s": 6.0,
                            "face_detected_ratio": 1.0, "speech_ratio": 0.9}],
            "detectors": {"exam": {"calibration": {"threshold": 1.01, "false_alarm_rate": 0.05,
                                                   "genuine_scores": [0.9, 0.95, 1.0], "method": "test"},
                                   "base_model_sha256": "ab" * 32, "enroll_seconds": 1.0}}}
    store = ProfileStore(root)
    store.save(Profile(name=name, card=card, models={"exam": person}))
    return store.folder(name)


def check_loaded_profile(profile) -> None:
    """What a profile that loads must offer the rest of the pipeline without another error."""
    from exposeanyone.detectors.base import Calibration
    from exposeanyone.profiles import validate_name

    validate_name(profile.name)
    for detector, person in profile.models.items():
        assert isinstance(person.info, dict)
        for tensor in person.tensors.values():
            assert np.isfinite(np.asarray(tensor, dtype=np.float64)).all()
        calibration = profile.calibration(detector)
        if calibration:
            Calibration.from_json(calibration)
        assert isinstance(profile.card.detectors[detector].fingerprint or "", str)
    assert all(isinstance(w, str) for w in profile.card.warnings)


class ProfileTarget(Target):
    """``ProfileStore.load`` on a profile folder whose card or weights were edited."""

    name = "profile"

    def setup(self, workdir: Path) -> None:
        super().setup(workdir)
        folder = _profile_seed(self.workdir / "seed")
        self.card = json.loads((folder / "profile.json").read_text())
        self.weights = SeedBytes((folder / "exam.safetensors").read_bytes())

    def strategy(self) -> st.SearchStrategy:
        card_text = SeedBytes(json.dumps(self.card).encode())
        card = st.one_of(st.just(card_text), mutated_json(self.card).map(lambda c: json.dumps(c).encode()),
                         mutated_bytes(card_text, hot_prefix=len(card_text)))
        weights = st.one_of(st.just(self.weights), mutated_bytes(self.weights, hot_prefix=256))
        return st.tuples(card, weights).filter(lambda pair: pair != (card_text, self.weights))

    def check(self, example: tuple[bytes, bytes]) -> None:
        import shutil

        from exposeanyone.profiles import ProfileStore

        root = self.workdir / "profiles"
        shutil.rmtree(root, ignore_errors=True)
        (root / "Ada").mkdir(parents=True)
        (root / "Ada" / "profile.json").write_bytes(example[0])
        (root / "Ada" / "exam.safetensors").write_bytes(example[1])
        try:
            with time_limit(EXAMPLE_TIME_LIMIT_S):
                profile = ProfileStore(root).load("Ada")
        except ProfileError as error:
            self.refused(error)
            return
        self.outcomes["read"] += 1
        check_loaded_profile(profile)


class ArchiveTarget(Target):
    """``ProfileStore.import_zip`` on mutated profile archives, inside a sentinel tree."""

    name = "archive"

    def setup(self, workdir: Path) -> None:
        from exposeanyone.profiles import ProfileStore

        super().setup(workdir)
        _profile_seed(self.workdir / "seed")
        self.seed = SeedBytes(ProfileStore(self.workdir / "seed").export_zip("Ada"))
        self.sentinel = self.workdir / "sentinel"
        (self.sentinel / "profiles").mkdir(parents=True, exist_ok=True)
        (self.sentinel / "keep.txt").write_text("outside the profiles folder")

    def strategy(self) -> st.SearchStrategy:
        return st.one_of(mutated_bytes(self.seed, hot_prefix=len(self.seed)),
                         mutated_zip(self.seed, json_members=("profile.json",), compression=zipfile.ZIP_DEFLATED),
                         mutated_zip(self.seed, json_members=("profile.json",)))

    def check(self, example: bytes) -> None:
        import shutil

        from exposeanyone.profiles import ProfileStore

        root = self.sentinel / "profiles"
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir()
        store = ProfileStore(root)
        try:
            with time_limit(EXAMPLE_TIME_LIMIT_S):
                profile = store.import_zip(example)
        except ProfileError as error:
            self.refused(error)
            profile = None
        outside = sorted(p.relative_to(self.sentinel).as_posix() for p in self.sentinel.rglob("*")
                         if root not in p.parents and p != root)
        assert outside == ["keep.txt"], f"written outside the profiles folder: {outside}"
        leftovers = [p.name for p in root.iterdir() if p.name.startswith(".import")]
        assert not leftovers, f"import left {leftovers} behind"
        if profile is not None:
            self.outcomes["read"] += 1
            check_loaded_profile(store.load(profile.name))


TARGETS: dict[str, type[Target]] = {t.name: t for t in (ContainerTarget, TrackTarget, ProfileTarget, ArchiveTarget)}
"""Every fuzz target by name."""
