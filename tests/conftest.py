"""Shared fixtures: small studies on the bundled synthetic data."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("TQDM_DISABLE", "1")


@pytest.fixture(scope="session")
def small_config():
    """A study small enough for unit tests (about a second on a 2-core CPU)."""
    from flimexplore.study.config import StudyConfig

    return StudyConfig(dataset="fish", n_images=16, splits=2, n_bg=4, epochs=6, seed=3)


@pytest.fixture(scope="session")
def small_context(small_config):
    from flimexplore.study.context import StudyContext

    return StudyContext(small_config, device="cpu")
