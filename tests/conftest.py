import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session")
def synthetic_media_dir(tmp_path_factory) -> Path:
    """One folder per test session for generated clips and bad inputs."""
    return tmp_path_factory.mktemp("synthetic-media")


@pytest.fixture(scope="session")
def talking_clip_factory(synthetic_media_dir):
    """``make(suffix=".mp4", **kwargs) -> Path``: a clip from ``synthetic.make_talking_clip``, made once per
    distinct arguments in the session (treat the file as read-only)."""
    from exposeanyone.demo.synthetic import make_talking_clip

    made: dict[tuple, Path] = {}

    def make(suffix: str = ".mp4", **kwargs) -> Path:
        key = (suffix, tuple(sorted(kwargs.items())))
        if key not in made:
            path = synthetic_media_dir / f"talking-{len(made):03d}{suffix}"
            made[key] = make_talking_clip(path, **kwargs)
        return made[key]

    return make


@pytest.fixture(scope="session")
def talking_clip(talking_clip_factory) -> Path:
    """A 4 s, 256x256, 25 fps h264 + aac clip of the astronaut talking (seed 0)."""
    return talking_clip_factory(".mp4", seconds=4.0, seed=0)


@pytest.fixture(scope="session")
def bad_input(synthetic_media_dir):
    """``make(kind) -> Path``: a problematic input from ``media_factory.make_bad_input``, made once per session."""
    from media_factory import make_bad_input

    folder = synthetic_media_dir / "bad"
    made: dict[str, Path] = {}

    def make(kind: str) -> Path:
        if kind not in made:
            made[kind] = make_bad_input(kind, folder)
        return made[kind]

    return make


@pytest.fixture(scope="session")
def clips(tmp_path_factory) -> dict[str, Path]:
    """The app tests' clips: two 6-s references and a 5-s clip to check, of the synthetic person (read-only)."""
    from app_testing import talking_clips

    wanted = {"reference_a": dict(seconds=6.0, seed=0), "reference_b": dict(seconds=6.0, seed=1),
              "check": dict(seconds=5.0, seed=2)}
    return talking_clips(tmp_path_factory.mktemp("app-clips"), wanted)
