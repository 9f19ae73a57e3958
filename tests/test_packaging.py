"""What installs what: the pins live in pyproject.toml; requirements.txt (for Spaces) repeats them exactly."""
from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _key(pin: str) -> str:
    return re.sub(r"\s+", "", pin.split("#")[0]).lower()


def test_requirements_txt_repeats_the_library_and_app_pins_exactly():
    project = _project()
    expected = sorted(map(_key, project["dependencies"] + project["optional-dependencies"]["app"]))
    listed = sorted(filter(None, map(_key, (ROOT / "requirements.txt").read_text().splitlines())))
    assert listed == expected, "copy pyproject.toml's dependencies and app extra into requirements.txt"


def test_the_space_front_matter_and_the_version_agree_with_the_pins():
    from exposeanyone.core.config import VERSION

    project = _project()
    gradio = next(p for p in project["optional-dependencies"]["app"] if p.startswith("gradio=="))
    front_matter = (ROOT / "README.md").read_text().split("---")[1]
    assert f"sdk_version: {gradio.split('==')[1]}" in front_matter
    assert project["version"] == VERSION


def test_the_package_face_imports_lazily():
    code = ("import sys, exposeanyone\n"
            "assert not {'torch', 'mediapipe', 'gradio'} & set(sys.modules), 'heavy import at package import'\n"
            "from exposeanyone import ProfileStore, ScoreReport, enroll_files, extract_clip, score_file\n"
            "assert callable(enroll_files) and callable(score_file) and callable(extract_clip)\n"
            "assert 'gradio' not in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
