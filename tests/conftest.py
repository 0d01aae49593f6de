"""Shared test set-up: the third-party test plugin is 'installed' through its dist-info on sys.path."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

PLUGIN_DIR = Path(__file__).parent / "plugin"
ROOT = Path(__file__).resolve().parent.parent
if str(PLUGIN_DIR) not in sys.path:
    sys.path.insert(0, str(PLUGIN_DIR))

torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture
def plugin_env() -> dict[str, str]:
    """Environment for subprocesses that must see the test plugin."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(PLUGIN_DIR), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


@pytest.fixture
def one_thread():
    """torch on one thread for the test's duration (training tests: bit-exact comparisons do not
    depend on the thread count, and they stay polite on a shared CPU). Use with
    ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "cache"
