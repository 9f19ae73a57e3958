"""The shipped examples: licensed and listed, their ready person current, and every verdict the app shows right.

The verdict test runs the shipped models on the shipped clips (tracking and the speech encoder included, about
half a minute). A verdict the models get wrong is a finding, recorded in KNOWN_MISSES with its numbers and in the
README's "Examples" section; it is a strict xfail, so the day the models get it right this test fails until the
record is corrected. Never swap an example to make a verdict right (examples/NOTICE.md).
"""
from __future__ import annotations

import zipfile

import pytest

from exposeanyone.core.assets import file_sha256
from exposeanyone.core.config import EXAMPLES_DIR
from exposeanyone.core.errors import ProfileError
from exposeanyone.pipeline import check_profile
from exposeanyone.profiles import ProfileExists, ProfileStore
from exposeanyone.ui import actions as ui
from exposeanyone.ui.examples import REMAKE_READY, ready_store, shipped_examples
from exposeanyone.ui.session import READY_PERSON, ProfileStores, SessionFiles

EXAMPLES = shipped_examples()
pytestmark = pytest.mark.skipif(EXAMPLES is None, reason="examples/ is not in this checkout")

SHOWN_DETECTORS = ("exam", "fau")
"""The verdicts the app shows for a checked example: EXAM's on the check tab, FauForensics' in its own tab."""
KNOWN_MISSES = {
    ("grid_s1_dubbed.mp4", "exam"): "EXAM scores the dub 0.580, below the threshold 0.648 (genuine example 0.418)",
    ("grid_s1_dubbed.mp4", "fau"): "FauForensics scores the dub -5.93, below its threshold 0",
    ("grid_s1_audio_late.mp4", "fau"): "FauForensics scores the 0.5-s delay -0.90, below its threshold 0",
}
"""Example verdicts the shipped models get wrong (measured with `exposeanyone score`; README, "Examples")."""


def ready() -> ProfileStore:
    return ProfileStore(EXAMPLES.profiles, where=READY_PERSON, read_only=True)


def test_every_example_is_listed_licensed_and_present():
    notice = (EXAMPLES_DIR / "NOTICE.md").read_text(encoding="utf-8")
    assert "CC BY 4.0" in notice and "3625687" in notice and "Cooke" in notice
    for path in EXAMPLES.references + EXAMPLES.checks:
        assert path.is_file() and path.name in notice, f"{path.name} is missing or not described in NOTICE.md"
    assert len(EXAMPLES.truths) == len(EXAMPLES.checks) and set(EXAMPLES.truths) == {"real", "fake"}


def test_the_ready_person_was_made_by_enroll_from_the_example_references_with_the_installed_models():
    profile = ready().load(EXAMPLES.person)
    stale = f"the shipped ready person is stale; remake it with: {REMAKE_READY}"
    assert [r.name for r in profile.card.references] == [p.name for p in EXAMPLES.references], stale
    assert [r.sha256 for r in profile.card.references] == [file_sha256(p) for p in EXAMPLES.references], stale
    assert set(profile.models) == set(ui.enrolling_detectors()), stale
    for detector in profile.models:
        try:
            check_profile(profile, detector)
        except ProfileError as error:
            pytest.fail(f"{error} ({stale})")
    assert ready_store(EXAMPLES, ui.enrolling_detectors()) is not None


def test_the_ready_person_cannot_be_replaced_deleted_or_shadowed(tmp_path):
    stores = ProfileStores(ProfileStore(tmp_path / "profiles"), SessionFiles(tmp_path / "sessions"), shared=True,
                           ready=ready())
    assert stores.names("visitor") == [EXAMPLES.person]
    own = stores.for_session("visitor")
    assert stores.holding("visitor", EXAMPLES.person) is stores.ready
    with pytest.raises(ProfileExists, match="ready example person and cannot be replaced; choose another name"):
        ui.enroll(EXAMPLES.person, [], own, replace=True)
    archive = tmp_path / "ready.zip"
    archive.write_bytes(ready().export_zip(EXAMPLES.person))
    with pytest.raises(ProfileExists, match="ready example person"):
        ui.import_profile(own, archive, replace=True)
    assert own.names() == [] and not any(p.name != ".locks" for p in own.root.glob("*"))
    with pytest.raises(ProfileError, match="cannot be changed"):
        ready().delete(EXAMPLES.person)
    assert ready().exists(EXAMPLES.person)
    with zipfile.ZipFile(archive) as members:  # the download of the ready person is a normal profile archive
        assert "profile.json" in members.namelist()


@pytest.mark.parametrize("detector", SHOWN_DETECTORS)
@pytest.mark.parametrize("index", range(len(EXAMPLES.checks)) if EXAMPLES else [])
def test_every_verdict_the_app_shows_for_an_example(index, detector, request):
    clip, truth = EXAMPLES.checks[index], EXAMPLES.truths[index]
    if (clip.name, detector) in KNOWN_MISSES:
        request.applymarker(pytest.mark.xfail(strict=True, reason=KNOWN_MISSES[clip.name, detector]))
    report = ui.check(clip, EXAMPLES.person, ready(), detector)
    assert report.verdict == truth, f"{clip.name}: {detector} says {report.verdict} ({report.score:.3f})"


def test_a_broken_or_incomplete_listing_offers_no_examples(tmp_path):
    import json

    assert shipped_examples(tmp_path) is None  # no listing
    (tmp_path / "examples.json").write_text("{not json")
    assert shipped_examples(tmp_path) is None
    (tmp_path / "examples.json").write_text(json.dumps({"person": "x", "profiles": "p", "references": ["a.mp4"],
                                                        "checks": [{"file": "b.mp4"}]}))
    assert shipped_examples(tmp_path) is None  # a check without its truth and label
    listing = json.loads((EXAMPLES_DIR / "examples.json").read_text())
    (tmp_path / "examples.json").write_text(json.dumps(listing))
    assert shipped_examples(tmp_path) is None  # the clips it names are not there
