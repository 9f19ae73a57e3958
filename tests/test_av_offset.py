import numpy as np
import pytest

from exposeanyone.detectors.fau.av_offset import MIN_MARGIN, best_offset

MOVES = np.arange(-10, 11)


def curve(best: int, depth: float) -> np.ndarray:
    """A suspicion curve with its minimum ``depth`` below the value at no move, at move ``best``."""
    return 1.0 - depth * np.exp(-0.5 * ((MOVES - best) / 2.0) ** 2)


def test_the_best_move_is_the_offset_and_late_sound_is_positive():
    offset = best_offset(MOVES, curve(4, 2.0), fps=25.0)
    assert offset.frames == 4 and offset.milliseconds == 160.0 and offset.margin > MIN_MARGIN
    assert offset.noticeable and "160 ms after the face" in offset.warning()
    early = best_offset(MOVES, curve(-5, 2.0), fps=25.0)
    assert early.frames == -5 and "about 200 ms before the face" in early.warning()
    beyond = best_offset(MOVES, curve(14, 3.0), fps=25.0)  # the true offset lies past the searched moves
    assert beyond.frames == 10 and "at least 400 ms after the face" in beyond.warning()
    assert early.to_json() == {"frames": -5, "milliseconds": -200, "margin": pytest.approx(early.margin, abs=1e-4),
                               "noticeable": True}


def test_small_or_unclear_offsets_are_not_reported():
    assert not best_offset(MOVES, curve(2, 2.0), fps=25.0).noticeable  # 80 ms: below what viewers notice
    assert not best_offset(MOVES, curve(6, 0.1), fps=25.0).noticeable  # a flat curve: no clear best move
    in_sync = best_offset(MOVES, curve(0, 2.0), fps=25.0)
    assert in_sync.frames == 0 and in_sync.margin == 0.0 and not in_sync.noticeable


def test_no_estimate_without_scores_or_without_the_unmoved_audio():
    values = curve(3, 1.0)
    values[5] = np.nan
    assert best_offset(MOVES, values, fps=25.0) is None
    assert best_offset(MOVES[1:] + 0.5, curve(3, 1.0)[1:], fps=25.0) is None
