"""A few fuzz examples per reader in the normal suite (``run_fuzz.py`` runs the same targets for minutes).

Derandomized, so a run is repeatable; the long runner draws fresh examples.
"""
from __future__ import annotations

import pytest
from fuzz_targets import TARGETS
from hypothesis import HealthCheck, given, settings


@pytest.mark.parametrize("name, examples", [("container", 30), ("track", 200), ("profile", 200), ("archive", 200)])
def test_reader_reads_or_refuses_in_one_sentence(name, examples, tmp_path, monkeypatch):
    monkeypatch.setenv("EXPOSEANYONE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("EXPOSEANYONE_PROFILES_DIR", str(tmp_path / "profiles"))
    target = TARGETS[name]()
    target.setup(tmp_path / name)

    @settings(max_examples=examples, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(target.strategy())
    def fuzz(example):
        target.check(example)

    fuzz()
    assert sum(target.outcomes.values()) >= examples  # every example reached the reader
    assert len(target.outcomes) >= 2  # the mutations did more than one thing to it
