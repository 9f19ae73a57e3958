import json

import numpy as np
import pytest

from exposeanyone.core.errors import ProfileError
from exposeanyone.detectors.base import PersonModel
from exposeanyone.profiles import Profile, ProfileStore, validate_name


def make_profile(name="Ada Lovelace", value=1.0):
    person = PersonModel("exam", {"adapter_tokens": np.full((4, 8), value, np.float32)}, {"steps": 10})
    card = {"detectors": {"exam": {"calibration": {"threshold": 1.01, "false_alarm_rate": 0.05,
                                                   "genuine_scores": [0.9, 1.0], "method": "test"}}}}
    return Profile(name=name, card=card, models={"exam": person})


@pytest.mark.parametrize("name", ["../evil", "a/b", "a\\b", "..", ".hidden", "", "   ", "x" * 65, "nul\x00l",
                                  "tab\tname", "bell\x07"])
def test_unsafe_names_are_refused(name):
    with pytest.raises(ProfileError):
        validate_name(name)


@pytest.mark.parametrize("name", ["Ada Lovelace", "Émile Zola", "李小龙", "ted_lieu-2", "O'Brien"])
def test_ordinary_names_are_accepted(name):
    assert validate_name(name) == name


def test_save_load_round_trip_and_listing(tmp_path):
    store = ProfileStore(tmp_path)
    store.save(make_profile())
    loaded = store.load("Ada Lovelace")
    np.testing.assert_array_equal(loaded.models["exam"].tensors["adapter_tokens"], np.ones((4, 8)))
    assert loaded.calibration("exam")["threshold"] == 1.01
    assert loaded.models["exam"].info == {"steps": 10}
    assert store.names() == ["Ada Lovelace"]


def test_nothing_is_written_outside_the_profiles_folder(tmp_path):
    store = ProfileStore(tmp_path / "profiles")
    with pytest.raises(ProfileError):
        store.save(make_profile(name="../outside"))
    assert not (tmp_path / "outside").exists()
    assert not (tmp_path / "profiles").exists() or not any((tmp_path / "profiles").iterdir())


def test_missing_profile_names_the_known_ones(tmp_path):
    store = ProfileStore(tmp_path)
    store.save(make_profile("Bob"))
    with pytest.raises(ProfileError, match="Bob"):
        store.load("Alice")


def test_tampered_weights_are_rejected(tmp_path):
    store = ProfileStore(tmp_path)
    store.save(make_profile(value=np.nan))
    with pytest.raises(ProfileError, match="NaN"):
        store.load("Ada Lovelace")
    (tmp_path / "Ada Lovelace" / "exam.safetensors").write_bytes(b"garbage")
    with pytest.raises(ProfileError, match="damaged"):
        store.load("Ada Lovelace")


def test_tampered_card_is_rejected(tmp_path):
    store = ProfileStore(tmp_path)
    store.save(make_profile())
    (tmp_path / "Ada Lovelace" / "profile.json").write_text("{not json")
    with pytest.raises(ProfileError, match="unreadable"):
        store.load("Ada Lovelace")


def test_saving_again_replaces_the_whole_profile(tmp_path):
    store = ProfileStore(tmp_path)
    store.save(make_profile(value=1.0))
    store.save(make_profile(value=2.0))
    assert store.load("Ada Lovelace").models["exam"].tensors["adapter_tokens"][0, 0] == 2.0
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith(".")] == ["Ada Lovelace"]


def test_export_import_round_trip_and_hostile_archives(tmp_path):
    import io
    import zipfile

    store = ProfileStore(tmp_path / "a")
    store.save(make_profile())
    data = store.export_zip("Ada Lovelace")
    other = ProfileStore(tmp_path / "b")
    other.import_zip(data, name="Ada copy")
    assert other.load("Ada copy").calibration("exam")["threshold"] == 1.01
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("profile.json", json.dumps({"format_version": 1, "name": "x"}))
        archive.writestr("../../escape.safetensors", b"x")
    with pytest.raises(ProfileError, match="other than"):
        other.import_zip(buffer.getvalue())
    with pytest.raises(ProfileError, match="not a zip"):
        other.import_zip(b"plain bytes")
    assert not (tmp_path / "escape.safetensors").exists()


# ------------------------------------------------------------------------------------------ the card
def test_a_card_written_by_enrollment_reads_back_through_profile_card(tmp_path):
    from synthetic_arrays import make_clip

    from exposeanyone.detectors.registry import profile_fingerprint
    from exposeanyone.pipeline import enroll_clips
    from exposeanyone.profiles import ProfileCard

    store = ProfileStore(tmp_path)
    profile = enroll_clips("Ada", [make_clip(12.0, seed=1, name="a.mp4"), make_clip(12.0, seed=2, name="b.mp4")],
                           detectors=("ridge",))
    store.save(profile)
    raw = json.loads((store.folder("Ada") / "profile.json").read_text(encoding="utf-8"))
    card = ProfileCard.from_json(raw)
    assert card.to_json() == raw and ProfileCard.from_json(card.to_json()) == card
    assert card.extra == {} and card.name == "Ada" and card.format_version == 1
    assert [r.name for r in card.references] == ["a.mp4", "b.mp4"] and card.references[0].sha256 == "hash1"
    entry = card.detectors["ridge"]
    assert entry.fingerprint == profile_fingerprint("ridge") and entry.info == profile.models["ridge"].info
    assert entry.calibration.threshold == profile.card.detectors["ridge"].calibration.threshold
    assert store.load("Ada").card == card


def test_a_single_reference_clip_is_said_on_the_card_and_in_every_check():
    from synthetic_arrays import make_clip

    from exposeanyone.pipeline import ONE_RECORDING_WARNING, enroll_clips, score_clip

    one = enroll_clips("Ada", [make_clip(20.0, seed=1, name="a.mp4")], detectors=("ridge",))
    two = enroll_clips("Ada", [make_clip(10.0, seed=1, name="a.mp4"), make_clip(10.0, seed=2, name="b.mp4")],
                       detectors=("ridge",))
    assert ONE_RECORDING_WARNING in one.card.warnings and ONE_RECORDING_WARNING not in two.card.warnings
    report = score_clip(make_clip(8.0, seed=3, name="c.mp4"), one, "ridge")
    assert f"profile: {ONE_RECORDING_WARNING}" in report.warnings


def test_a_card_without_its_optional_fields_loads(tmp_path):
    from exposeanyone.profiles import ProfileCard

    store = ProfileStore(tmp_path)
    store.save(make_profile())
    folder = store.folder("Ada Lovelace")
    (folder / "profile.json").write_text(json.dumps({
        "format_version": 1, "references": [{"name": "a.mp4", "duration_s": 6, "usable_s": 5.5, "speech_ratio": 0.9}],
        "detectors": {"exam": {}}}))
    card = store.load("Ada Lovelace").card
    assert card.created is None and card.usable_reference_seconds is None and card.warnings == []
    assert card.references[0].sha256 is None and card.references[0].face_detected_ratio is None
    assert card.detectors["exam"].calibration is None and card.detectors["exam"].fingerprint is None
    assert card.to_json() == {"format_version": 1, "warnings": [], "detectors": {"exam": {}}, "references": [
        {"name": "a.mp4", "duration_s": 6, "usable_s": 5.5, "speech_ratio": 0.9}]}
    assert ProfileCard.from_json({}) == ProfileCard()


def test_unknown_card_keys_survive_a_save(tmp_path):
    store = ProfileStore(tmp_path)
    store.save(make_profile())
    folder = store.folder("Ada Lovelace")
    raw = json.loads((folder / "profile.json").read_text())
    raw["added_later"] = {"x": 1}
    raw["detectors"]["exam"]["note"] = "kept"
    (folder / "profile.json").write_text(json.dumps(raw))
    store.save(store.load("Ada Lovelace"))
    again = json.loads((folder / "profile.json").read_text())
    assert again["added_later"] == {"x": 1} and again["detectors"]["exam"]["note"] == "kept"


def test_the_library_enrolls_over_an_existing_name_only_when_asked(tmp_path):
    from exposeanyone.pipeline import enroll_files
    from exposeanyone.profiles import ProfileExists

    store = ProfileStore(tmp_path)
    store.save(make_profile("Ada", value=3.0))
    with pytest.raises(ProfileExists, match=r"^A profile named 'Ada' exists; pass replace=True to overwrite it\.$"):
        enroll_files("Ada", [tmp_path / "not-analysed.mp4"], store)  # refused before any video is read
    assert store.names() == ["Ada"] and store.load("Ada").models["exam"].tensors["adapter_tokens"][0, 0] == 3.0
