"""Launching the app in-process for tests: a tiny EXAM model, isolated folders, a free port."""
from __future__ import annotations

import importlib.util
import socket
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PERSONALIZE_STEPS = 4
"""Adapter steps per enrollment in tests (the shipped minimum is tens of steps): enough to run every
stage, few enough that an enrollment takes seconds on a busy 2-core machine."""


def load_app_module():
    """``app.py`` from the repository root, whatever the working directory."""
    if "app" in sys.modules and getattr(sys.modules["app"], "__file__", "") == str(ROOT / "app.py"):
        return sys.modules["app"]
    spec = importlib.util.spec_from_file_location("app", ROOT / "app.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["app"] = module
    spec.loader.exec_module(module)
    return module


def talking_clips(folder: Path, wanted: dict[str, dict]) -> dict[str, Path]:
    """``name -> path`` of synthetic talking clips ``folder/<name>.mp4`` made with each name's options."""
    from exposeanyone.demo.synthetic import make_talking_clip

    made = {}
    for name, options in wanted.items():
        made[name] = folder / f"{name}.mp4"
        make_talking_clip(made[name], **options)
    return made


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def save_tiny_exam(folder: Path) -> Path:
    """A small random EXAM model whose output depends on its input (the shipped init outputs zeros)."""
    import torch

    from exposeanyone.detectors.exam.model import ExamDenoiser

    torch.manual_seed(0)
    model = ExamDenoiser(width=32, layers=1, heads=2, ff_mult=2, n_adapter_tokens=2, dropout=0.0)
    with torch.no_grad():  # the zero-initialised (adaLN-zero) layers would make the network ignore audio and identity
        for parameter in model.parameters():
            if not parameter.detach().abs().sum():
                parameter.normal_(std=0.2)
    model.save_pretrained(folder)
    return folder


def save_tiny_fau(folder: Path) -> Path:
    """A small untrained FauForensics model (its scores mean nothing; the plumbing is what is tested)."""
    import torch

    from exposeanyone.detectors.fau.model import FauForensicsModel

    torch.manual_seed(0)
    FauForensicsModel(width=32, heads=2, mouth_channels=(8, 16)).save_pretrained(folder)
    return folder


@contextmanager
def app_environment(root: Path, shipped_models: bool = False):
    """Environment for an app under test: its own profiles, caches and Gradio temp dir, and tiny EXAM and
    FAU models (or, with ``shipped_models``, the ones in assets/ at their real cost)."""
    from exposeanyone.detectors.exam import detector as exam_detector
    from exposeanyone.pipeline import load_detector

    patch = pytest.MonkeyPatch()
    patch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
    patch.setenv("GRADIO_TEMP_DIR", str(root / "gradio"))
    patch.setenv("EXPOSEANYONE_CACHE_DIR", str(root / "cache"))
    patch.setenv("EXPOSEANYONE_PROFILES_DIR", str(root / "profiles"))
    patch.setenv("GLOG_minloglevel", "2")
    if shipped_models:  # also inside another app's environment with tiny models
        patch.delenv("EXPOSEANYONE_EXAM_MODEL", raising=False)
        patch.delenv("EXPOSEANYONE_FAU_MODEL", raising=False)
    else:
        patch.setenv("EXPOSEANYONE_EXAM_MODEL", str(save_tiny_exam(root / "exam")))
        patch.setenv("EXPOSEANYONE_FAU_MODEL", str(save_tiny_fau(root / "fau")))
        patch.setattr(exam_detector, "MIN_PERSONALIZE_STEPS", PERSONALIZE_STEPS)
        patch.setattr(exam_detector, "MAX_PERSONALIZE_STEPS", PERSONALIZE_STEPS)
    load_detector.cache_clear()
    try:
        yield root
    finally:
        load_detector.cache_clear()
        patch.undo()


@contextmanager
def running_app(root: Path, examples: bool = False, shared: bool = False):
    """Yield ``(demo, url, store)`` for the app served in this process on a free port; ``shared``: as a shared
    deployment (each session has its own profiles in its folder under ``root / "sessions"``; ``store`` stays
    empty)."""
    from exposeanyone.profiles import ProfileStore
    from exposeanyone.ui import session

    app = load_app_module()
    store = ProfileStore(root / "profiles")
    demo = app.build_demo(store, examples=examples, session_files=session.SessionFiles(root / "sessions"), shared=shared)
    demo.queue(default_concurrency_limit=1)
    _, url, _ = demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=free_port(),
                            quiet=True, **app.launch_options())
    try:
        yield demo, url, store
    finally:
        demo.close()
