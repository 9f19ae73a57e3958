import numpy as np
import pytest
from synthetic_arrays import make_clip

from exposeanyone.core.config import MEL_PER_FRAME
from exposeanyone.detectors.audio_reference import MIN_SHIFT_FRAMES, REFERENCE_SHIFTS, reference_shifts, shifted_audio


def test_shifts_wrap_within_the_clip_and_skip_near_sync_moves():
    assert reference_shifts(500) == [s % 500 for s in REFERENCE_SHIFTS]
    # on 60 frames +-50 wrap to 10 and 50, +-35 to 25 and 35: all far enough from 0
    assert reference_shifts(60) == [10, 25, 35, 50]
    # on 45 frames 50 wraps to 5 and -50 to 40 (5 from 0 the other way): both dropped
    kept = reference_shifts(45)
    assert all(min(s, 45 - s) >= MIN_SHIFT_FRAMES for s in kept) and 5 not in kept and 40 not in kept
    assert reference_shifts(15) == [] and reference_shifts(0) == []


def test_shifted_audio_moves_every_stream_together():
    clip = make_clip(seconds=3.2, seed=3)
    moved = shifted_audio(clip, 30)
    order = (np.arange(80) + 30) % 80
    np.testing.assert_array_equal(moved.audio.speech, clip.audio.speech[order])
    np.testing.assert_array_equal(moved.audio.energy_db, clip.audio.energy_db[order])
    np.testing.assert_array_equal(moved.audio.mel.reshape(80, MEL_PER_FRAME, -1),
                                  clip.audio.mel.reshape(80, MEL_PER_FRAME, -1)[order])
    assert moved.track is clip.track and moved.num_frames == clip.num_frames
    np.testing.assert_array_equal(moved.waveform_envelope, clip.waveform_envelope[order])
    np.testing.assert_array_equal(shifted_audio(moved, 50).audio.mel, clip.audio.mel)


@pytest.mark.parametrize("shift", [0, 80, -80])
def test_a_full_turn_is_the_same_audio(shift):
    clip = make_clip(seconds=3.2, seed=4)
    np.testing.assert_array_equal(shifted_audio(clip, shift).audio.mel, clip.audio.mel)
