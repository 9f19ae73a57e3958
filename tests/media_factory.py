"""Broken and awkward inputs for the reliability tests: empty, truncated, huge, long, silent, faceless...

Made on the fly from the project's own synthetic talking clips (:mod:`exposeanyone.demo.synthetic`), so
the tests run everywhere without real footage.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable

import numpy as np

from exposeanyone.core.config import ASSETS_DIR, SAMPLE_RATE
from exposeanyone.demo.synthetic import (FACE_IMAGE, TalkingClip, encode_audio, load_face, make_talking_clip,
                                         render_talking_clip, synth_speech, write_clip)


def _make_long(path: Path, seconds: float = 700.0) -> Path:
    """A tiny still picture shown once a second for ``seconds``, with 2 s of speech at the start."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=1, options={"preset": "ultrafast", "crf": "35"})
        stream.width = stream.height = 64
        stream.pix_fmt = "yuv420p"
        audio_stream = container.add_stream("aac", rate=SAMPLE_RATE, layout="mono")
        still = np.full((64, 64, 3), 128, np.uint8)
        for index in range(int(seconds)):
            frame = av.VideoFrame.from_ndarray(still, format="rgb24")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
        speech = synth_speech(2.0, 0)
        for start in range(0, len(speech), 1024):
            container.mux(encode_audio(audio_stream, speech, SAMPLE_RATE, start, 1024))
        container.mux(audio_stream.encode(None))
    return path


def _make_huge(path: Path, side: int = 4000, frames: int = 2) -> Path:
    """A few ``side`` x ``side`` frames of the upscaled face with a fraction of a second of speech."""
    import cv2

    seconds = frames / 25
    face = cv2.resize(load_face(256)[0], (side, side), interpolation=cv2.INTER_LINEAR)
    audio = synth_speech(seconds, 0)
    clip = TalkingClip(frame_times=np.arange(frames) / 25, audio=audio, envelope=np.zeros_like(audio),
                       mouth_open=np.zeros(frames, np.float32), sample_rate=SAMPLE_RATE, width=side,
                       height=side, seconds=seconds, render_frame=lambda index: face)
    return write_clip(path, clip, video_options={"preset": "ultrafast", "crf": "30"})


def _make_truncated(path: Path, seed: int, faststart: bool) -> Path:
    whole = write_clip(path.with_name(path.stem + "_whole.mp4"),
                       render_talking_clip(2.0, seed=seed), faststart=faststart)
    data = whole.read_bytes()
    whole.unlink()
    path.write_bytes(data[: len(data) // 2])
    return path


BAD_INPUTS: dict[str, tuple[str, Callable[[Path, int], Path]]] = {
    "empty": (".mp4", lambda path, seed: (path.write_bytes(b""), path)[1]),
    "random_bytes": (".mp4", lambda path, seed: (
        path.write_bytes(np.random.default_rng(seed).integers(0, 256, 4096, dtype=np.uint8).tobytes()),
        path)[1]),
    "text_as_mp4": (".mp4", lambda path, seed: (
        path.write_text("This is a text file, not a video.\n" * 20), path)[1]),
    "image": (".png", lambda path, seed: (shutil.copyfile(ASSETS_DIR / FACE_IMAGE, path), path)[1]),
    "audio_only": (".m4a", lambda path, seed: make_talking_clip(path, 2.0, seed=seed, video=False)),
    "video_only": (".mp4", lambda path, seed: make_talking_clip(path, 2.0, seed=seed, audio=False)),
    "no_face": (".mp4", lambda path, seed: make_talking_clip(path, 2.0, seed=seed, faces=0)),
    "silent": (".mp4", lambda path, seed: make_talking_clip(path, 2.0, seed=seed, speech="silence")),
    "truncated": (".mp4", lambda path, seed: _make_truncated(path, seed, faststart=True)),
    "truncated_no_index": (".mp4", lambda path, seed: _make_truncated(path, seed, faststart=False)),
    "two_faces": (".mp4", lambda path, seed: make_talking_clip(path, 2.0, seed=seed, faces=2)),
    "huge_resolution": (".mp4", lambda path, seed: _make_huge(path)),
    "long": (".mp4", lambda path, seed: _make_long(path)),
    "vfr": (".mp4", lambda path, seed: make_talking_clip(path, 3.0, seed=seed, vfr=True)),
}
"""kind -> (suffix, maker). ``truncated`` keeps its index (faststart) and loses the second half of its
media data; ``truncated_no_index`` loses the index at the end of the file, as an interrupted download."""


def make_bad_input(kind: str, folder: str | Path, *, seed: int = 0) -> Path:
    """Write one kind of problematic input (see ``BAD_INPUTS``) as ``folder/<kind><suffix>``."""
    if kind not in BAD_INPUTS:
        raise ValueError(f"unknown bad input {kind!r}: use one of {', '.join(BAD_INPUTS)}")
    suffix, maker = BAD_INPUTS[kind]
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return maker(folder / f"{kind}{suffix}", seed)
