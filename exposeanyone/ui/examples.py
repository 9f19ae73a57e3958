"""The app's example clips: the shipped GRID examples with their ready person, or synthetic ones.

The shipped examples (``examples/``, listed in ``examples/examples.json``; source, licence and the rule that
picked them in ``examples/NOTICE.md``) come with their speaker already enrolled from the reference clips, so a
visitor's first check takes seconds. Synthetic clips stand in where ``examples/`` is absent (a pip-installed
package); the tests make their own.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..core.config import EXAMPLES_DIR, cache_dir
from ..core.errors import InputError
from ..pipeline import check_profile, load_detector
from ..profiles import ProfileStore
from .session import READY_PERSON

REMAKE_READY = ('exposeanyone enroll --name "GRID speaker s1" --profiles examples/profiles --detectors exam,ridge '
                "--replace examples/grid_s1_reference_1.mp4 examples/grid_s1_reference_2.mp4")
"""The command that made the ready person's profile (README, "Examples"), run again when the models change."""


@dataclass(frozen=True)
class Examples:
    """Example clips: references to enroll from and clips to check, with what each check clip is."""

    references: list[Path]
    checks: list[Path]
    check_labels: list[str]
    person: str
    truths: list[str] = field(default_factory=list)
    """``"real"`` or ``"fake"`` for each check clip: what it truly is (empty when not known)."""
    profiles: Path | None = None
    """The folder holding ``person``'s shipped profile, when there is one."""


def shipped_examples(folder: Path | None = None) -> Examples | None:
    """The examples listed in ``folder/examples.json`` (default ``examples/``), or None when it or a clip is missing."""
    folder = Path(folder) if folder else EXAMPLES_DIR
    try:
        listing = json.loads((folder / "examples.json").read_text(encoding="utf-8"))
        checks = listing["checks"]
        examples = Examples(references=[folder / name for name in listing["references"]],
                            checks=[folder / check["file"] for check in checks],
                            check_labels=[check["label"] for check in checks], person=listing["person"],
                            truths=[check["truth"] for check in checks], profiles=folder / listing["profiles"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not all(path.is_file() for path in examples.references + examples.checks):
        return None
    return examples


def ready_store(examples: Examples | None, detectors: list[str]) -> ProfileStore | None:
    """The read-only store of the examples' ready person when its profile fits the installed ``detectors``
    that need one, else None: a profile made with other models would only be refused at the first check."""
    if examples is None or examples.profiles is None:
        return None
    store = ProfileStore(examples.profiles, where=READY_PERSON, read_only=True)
    try:
        profile = store.load(examples.person)
        for detector in detectors:
            check_profile(profile, detector)
    except InputError as error:
        print(f"note: the ready example person is not offered ({error} Remake it with: {REMAKE_READY})")
        return None
    return store


def synthetic_dir() -> Path:
    """Where generated synthetic example clips live (served to visitors; nothing else of the cache is)."""
    return cache_dir() / "app-examples"


def synthetic_examples(folder: Path | None = None) -> Examples:
    """Generate (once) short synthetic talking clips to try the app with when no real examples are installed."""
    from ..demo.synthetic import make_talking_clip

    folder = Path(folder) if folder else synthetic_dir()
    folder.mkdir(parents=True, exist_ok=True)
    wanted = {"reference_a.mp4": dict(seconds=8.0, seed=0), "reference_b.mp4": dict(seconds=8.0, seed=1),
              "check_same_person.mp4": dict(seconds=5.0, seed=2),
              "check_out_of_sync.mp4": dict(seconds=5.0, seed=3, audio_shift_ms=400.0)}
    paths = {}
    for name, options in wanted.items():
        path = folder / name
        if not path.is_file():
            partial = folder / f".{name}.partial.mp4"
            make_talking_clip(partial, **options)
            partial.replace(path)
        paths[name] = path
    return Examples(references=[paths["reference_a.mp4"], paths["reference_b.mp4"]],
                    checks=[paths["check_same_person.mp4"], paths["check_out_of_sync.mp4"]],
                    check_labels=["synthetic: genuine, new speech", "synthetic: voice 0.4 s late (fake)"],
                    person="synthetic speaker", truths=["real", "fake"])


def warm_up(examples: Examples, detectors: list[str]) -> None:
    """Load ``detectors`` and analyse the example clips to check (into the analysis cache), so that a visitor's
    first check of an example takes seconds: measured on 2 CPU cores, 13.8 s from opening the page to the
    first verdict without this, most of it loading the models and tracking the clip (``benchmarks/first_verdict.py``)."""
    from ..media.extract import extract_clip

    for detector in detectors:
        load_detector(detector)
    for clip in examples.checks:
        try:
            extract_clip(clip)
        except (InputError, OSError) as error:  # the app still starts; the check will say what is wrong
            print(f"note: example {clip.name} was not analysed ahead ({error})")
