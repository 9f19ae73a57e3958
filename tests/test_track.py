import numpy as np
import pytest
from synthetic_arrays import make_track

from exposeanyone.core.errors import InputError
from exposeanyone.media.track import EXPRESSION_NAMES, Track
from exposeanyone.media.tracking import interpolate_gaps, pose_from_matrix, short_gaps


def test_save_load_round_trip(tmp_path):
    track = make_track(30, valid=np.arange(30) % 7 != 0)
    track.save(tmp_path / "t.npz")
    loaded = Track.load(tmp_path / "t.npz")
    for name in ("blendshapes", "pose", "landmarks", "mouth", "valid", "interpolated"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(track, name))
    assert loaded.fps == 25 and loaded.frame_size == (256, 256)
    assert loaded.expressions().shape == (30, len(EXPRESSION_NAMES)) == (30, 58)


def test_load_refuses_pickles_and_junk(tmp_path):
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip at all")
    with pytest.raises(InputError, match="not a valid ExposeAnyone track"):
        Track.load(junk)
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, meta_json=np.array([{"evil": 1}], dtype=object))
    with pytest.raises(InputError):
        Track.load(pickled)


def test_load_rejects_wrong_shapes_and_nan(tmp_path):
    track = make_track(10)
    arrays = track.to_arrays()
    arrays["blendshapes"] = arrays["blendshapes"][:, :40]
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(InputError, match="blendshapes"):
        Track.load(tmp_path / "bad.npz")
    arrays = track.to_arrays()
    arrays["pose"][3, 2] = np.nan
    np.savez(tmp_path / "nan.npz", **arrays)
    with pytest.raises(InputError, match="NaN"):
        Track.load(tmp_path / "nan.npz")


def test_short_gaps_are_filled_and_long_ones_are_not():
    seen = np.array([1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0], bool)
    filled = short_gaps(seen, max_gap=5)
    np.testing.assert_array_equal(filled, [0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    values = np.array([0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0], float)[:, None]
    interpolate_gaps(values, seen, filled)
    np.testing.assert_allclose(values[:4, 0], [0, 1, 2, 3])


def test_pose_from_matrix_recovers_yaw_and_translation():
    yaw = 0.3
    matrix = np.eye(4)
    matrix[:3, :3] = [[np.cos(yaw), 0, np.sin(yaw)], [0, 1, 0], [-np.sin(yaw), 0, np.cos(yaw)]]
    matrix[:3, 3] = [1, 2, -30]
    pose = pose_from_matrix(matrix)
    np.testing.assert_allclose(pose, [0, yaw, 0, 1, 2, -30], atol=1e-6)
