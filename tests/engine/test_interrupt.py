"""Ctrl-C (one SIGINT, as a terminal sends it) gives one line, ``interrupted``, and exit status
130 at any moment of ``nodegraph run`` -- during the imports at start-up, during a node -- and
leaves no half-written file (issue 19 §2, BR-2-35)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image as PILImage


def _start(tmp_path: Path, plugin_env: dict[str, str]) -> tuple[subprocess.Popen, Path]:
    PILImage.fromarray((np.random.RandomState(0).rand(8, 8, 3) * 255).astype(np.uint8)).save(tmp_path / "in.png")
    g = {"nodegraph": 1, "nodes": {
        "img": {"type": "io.LoadImage", "params": {"path": "in.png"}},
        "slow": {"type": "ngtest.Sleep", "params": {"seconds": 60}, "inputs": {"image": "img.image"}},
        "save": {"type": "io.SaveImage", "params": {"path": "out/x.png"}, "inputs": {"image": "slow.image"}}}}
    (tmp_path / "g.json").write_text(json.dumps(g))
    log = tmp_path / "log.jsonl"
    # the installed console script, as a user runs it
    script = Path(sys.executable).parent / "nodegraph"
    cmd = [str(script), "run", str(tmp_path / "g.json"), "--no-cache", "--log", str(log), "-q"]
    env = dict(plugin_env, OMP_NUM_THREADS="1")
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    return p, log


def _interrupt(p: subprocess.Popen) -> str:
    p.send_signal(signal.SIGINT)
    out, _ = p.communicate(timeout=120)
    return out


def test_ctrl_c_during_start_up_imports(tmp_path: Path, plugin_env: dict[str, str]) -> None:
    """Mutant killed: the console entry point back at ``nodegraph.cli:main`` (a 16-57 line import
    traceback, exit -2)."""
    p, _ = _start(tmp_path, plugin_env)
    time.sleep(0.4)  # the interpreter is up; torch & co. are still importing
    out = _interrupt(p)
    assert p.returncode == 130, out
    assert out.strip() == "interrupted"


def test_ctrl_c_during_a_node_leaves_no_partial_file(tmp_path: Path, plugin_env: dict[str, str]) -> None:
    """Mutant killed: ``standalone_mode`` left to click ("Aborted!", exit 1) -- or any path where
    the interrupt escapes as a traceback."""
    p, log = _start(tmp_path, plugin_env)
    deadline = time.time() + 90
    while time.time() < deadline and not (log.exists() and '"node": "slow"' in log.read_text()):
        time.sleep(0.1)
    assert log.exists(), "the run never reached the slow node"
    out = _interrupt(p)
    assert p.returncode == 130, out
    assert out.strip().splitlines()[-1] == "interrupted" and "Traceback" not in out and "Aborted" not in out
    out_dir = tmp_path / "out"
    assert not out_dir.exists() or not any(out_dir.iterdir())
