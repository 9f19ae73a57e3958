"""The evaluation protocol and the combined detector, end to end on generated clips and tiny models."""
import numpy as np
import pytest
from app_testing import app_environment

from exposeanyone.evaluation.manifest import read_manifest
from exposeanyone.evaluation.protocol import audio_swapped, evaluate, shares_speech
from exposeanyone.media.extract import extract_clip
from exposeanyone.pipeline import enroll_clips, load_detector, score_clip


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    """Two persons of interest (different seeds stand for different people) and one impostor."""
    from exposeanyone.demo.synthetic import make_talking_clip

    root = tmp_path_factory.mktemp("manifest")
    lines = ["file\tidentity\tsplit\tlabel\tmanipulation\tsession"]
    for person, seed in (("ann", 10), ("bob", 20)):
        make_talking_clip(root / f"{person}_ref.mp4", seconds=9.0, seed=seed)
        lines.append(f"{person}_ref.mp4\t{person}\tref\treal\tnone\ts1")
        for k in range(2):
            make_talking_clip(root / f"{person}_test{k}.mp4", seconds=4.0, seed=seed + 1 + k)
            lines.append(f"{person}_test{k}.mp4\t{person}\ttest\treal\tnone\t{'s1' if k == 0 else 's2'}")
    make_talking_clip(root / "eve.mp4", seconds=4.0, seed=99)
    lines.append("eve.mp4\teve\ttest\treal\tnone\tx")
    make_talking_clip(root / "eve_fake.mp4", seconds=4.0, seed=98, audio_shift_ms=600)
    lines.append("eve_fake.mp4\teve\ttest\tfake\tlipsync\tx")
    (root / "MANIFEST.tsv").write_text("\n".join(lines) + "\n")
    return root / "MANIFEST.tsv"


@pytest.fixture(scope="module")
def environment(tmp_path_factory):
    with app_environment(tmp_path_factory.mktemp("env")) as root:
        yield root


def loader(row, is_test):
    return extract_clip(row.path)


def test_protocol_reports_every_identity_and_negative_kind(manifest, environment):
    rows = read_manifest(manifest)
    result = evaluate(rows, loader, "exam")
    assert set(result["per_identity"]) == {"ann", "bob"}
    for entry in result["per_identity"].values():
        assert entry["n_real"] == 2
        assert entry["n_fake"] == 2 + 3  # two audio swaps; the other person's two real clips and eve's one
        assert entry["excluded_audio_swaps"] == [] and entry["genuine_repeating_reference"] == []
    assert set(result["per_manipulation"]) == {"audio-swap", "identity-swap"}
    assert result["per_manipulation"]["identity-swap"]["n_fake"] == 2 * 3
    assert 0.0 <= result["mean_auc"] <= 1.0
    assert result["cross_session_false_alarms"]["n"] == 2  # one s2 clip per person


def test_detectors_without_enrollment_are_also_scored_open_set(manifest, environment):
    result = evaluate(read_manifest(manifest), loader, "fau")
    assert set(result["open_set"]) == {"audio-swap", "lipsync"}
    assert result["open_set"]["lipsync"]["n_fake"] == 1 and result["open_set"]["audio-swap"]["n_fake"] == 4
    assert "open_set" not in evaluate(read_manifest(manifest), loader, "fau", open_set=False)


def test_audio_swaps_are_cyclic_and_need_two_clips(manifest):
    rows = [r for r in read_manifest(manifest) if r.identity == "ann" and r.split == "test"]
    clips = [extract_clip(r.path) for r in rows]
    swapped = audio_swapped(clips)
    assert len(swapped) == 2 and "+audio:" in swapped[0].name
    np.testing.assert_array_equal(swapped[0].audio.mel, clips[1].audio.mel[: len(swapped[0].audio.mel)])
    assert audio_swapped(clips[:1]) == []


def test_two_encodes_of_one_speech_are_no_dubbing(manifest):
    from dataclasses import replace

    rows = [r for r in read_manifest(manifest) if r.identity == "ann"]
    reference, first, second = (extract_clip(r.path) for r in rows)
    assert not shares_speech(first, second) and not shares_speech(first, reference)
    rng = np.random.default_rng(0)
    excerpt = reference.slice(40, 140)  # the same speech, louder and noisier, as another upload would carry it
    reencoded = replace(excerpt, audio=replace(excerpt.audio, mel=excerpt.audio.mel + 1.5 + 0.1 * rng.standard_normal(
        excerpt.audio.mel.shape).astype(np.float32)), name="reupload")
    assert shares_speech(reencoded, reference) and shares_speech(reference, reencoded)
    excluded = []
    swapped = audio_swapped([excerpt, reencoded, first], excluded)
    assert excluded == [f"{excerpt.name}+audio:reupload"]
    assert [c.name for c in swapped] == [f"reupload+audio:{first.name}", f"{first.name}+audio:{excerpt.name}"]


def test_combined_detector_fuses_exam_and_fau_on_the_persons_scale(manifest, environment):
    rows = read_manifest(manifest)
    reference = [extract_clip(r.path) for r in rows if r.identity == "ann" and r.split == "ref"]
    profile = enroll_clips("ann", reference, ["combined"])
    stats = profile.models["combined"].tensors["reference_stats"]
    assert stats.shape == (4,) and np.isfinite(stats).all() and stats[1] > 0 and stats[3] > 0
    report = score_clip(extract_clip(rows[1].path), profile, "combined")
    exam_windows = np.array(report.extras["exam_window_scores"], dtype=float)
    fau_windows = np.array(report.extras["fau_window_scores"], dtype=float)
    expected = ((exam_windows - stats[0]) / stats[1] + (fau_windows - stats[2]) / stats[3]) / 2
    np.testing.assert_allclose(np.array(report.window_scores, dtype=float), expected, rtol=1e-4)
    assert report.verdict in {"real", "fake"} and np.isfinite(report.threshold)
    assert load_detector("combined").requires_enrollment


def test_eval_command_writes_the_documented_json(manifest, environment, tmp_path):
    import json

    from exposeanyone.cli.main import main

    out = tmp_path / "eval.json"
    assert main(["eval", "--manifest", str(manifest), "--detector", "sync,ridge", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    for key in ("mean_auc", "per_identity", "per_manipulation", "detectors", "cross_session_false_alarms"):
        assert key in result
    assert set(result["detectors"]) == {"sync", "ridge"}
    assert set(result["per_identity"]["ann"]) >= {"auc", "n_real", "n_fake"}
    assert main(["eval", "--manifest", str(manifest), "--negatives", "face-swap", "--json", str(tmp_path / "x.json")]) == 2
    assert not (tmp_path / "x.json").exists()
