"""What a training run shows and writes: a rich progress line, JSONL records, sample grids."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..types import Image, LabelMap, Mask, get_label_set


class Progress:
    """A rich progress bar with losses and it/s; off a terminal, one plain line per ~5% of the run."""

    def __init__(self, total: int, start: int, enabled: bool = True) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.console = Console(stderr=True)
        self.enabled = enabled and self.console.is_terminal
        self.bar = Progress(TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[rate]}"), TimeRemainingColumn(),
                            TextColumn("{task.fields[losses]}"), console=self.console, transient=False,
                            disable=not self.enabled)
        self.task = self.bar.add_task("train", total=total, completed=start, rate="", losses="")
        self.t_last, self.s_last = time.perf_counter(), start
        self.rate = 0.0
        self.plain = enabled and not self.enabled
        self.total, self.printed = total, start
        if self.enabled:
            self.bar.start()

    def update(self, step: int, losses: dict[str, float]) -> float:
        now = time.perf_counter()
        if now - self.t_last > 0.5 or self.rate == 0.0:
            self.rate = (step - self.s_last) / (now - self.t_last)
            self.t_last, self.s_last = now, step
        text = "  ".join(f"{k} {v:.4g}" for k, v in losses.items())
        self.bar.update(self.task, completed=step, rate=f"{self.rate:.2f} it/s", losses=text)
        if self.plain and (step - self.printed >= max(1, self.total // 20) or step == self.total):
            self.printed = step
            print(f"step {step}/{self.total}  {self.rate:.2f} it/s  {text}", file=sys.stderr, flush=True)
        return self.rate

    def log(self, message: str) -> None:
        self.console.log(message)

    def close(self) -> None:
        if self.enabled:
            self.bar.stop()


def _palette_for(label_set: str | None, n: int) -> np.ndarray:
    pal: list[tuple[int, int, int]] = []
    if label_set:
        try:
            pal = list(get_label_set(label_set).palette)
        except KeyError:
            pal = []
    rng = np.random.default_rng(12345)
    extra = rng.integers(0, 256, size=(max(0, n - len(pal)), 3))
    return np.concatenate([np.asarray(pal, dtype=np.int64).reshape(-1, 3), extra]).astype(np.float32) / 255.0


def to_rgb(value: Any, port: Any) -> torch.Tensor | None:
    """An N x 3 x H x W float [0, 1] picture of a port value, or None if it has no picture."""
    if not isinstance(value, torch.Tensor):
        return None
    t = value.detach().float().cpu()
    if isinstance(port, LabelMap) or (t.dim() == 3 and not t.is_floating_point()):
        lab = t.long()
        lab_np = lab.clamp(min=0).numpy()
        pal = _palette_for(getattr(port, "label_set", None), int(lab_np.max(initial=0)) + 1)
        return torch.from_numpy(pal[lab_np]).permute(0, 3, 1, 2).contiguous()
    if t.dim() != 4:
        return None
    if t.shape[1] == 1:
        t = t.repeat(1, 3, 1, 1)
    elif t.shape[1] != 3:
        t = t[:, :3] if t.shape[1] > 3 else t.repeat(1, 3, 1, 1)[:, :3]
    if not isinstance(port, (Image, Mask)):
        lo, hi = t.amin(dim=(1, 2, 3), keepdim=True), t.amax(dim=(1, 2, 3), keepdim=True)
        t = (t - lo) / (hi - lo).clamp(min=1e-8)
    return t.clamp(0, 1)


def sample_grid(columns: list[tuple[Any, Any]], count: int, path: Path) -> Path | None:
    """Save a PNG: one row per batch item (up to ``count``), one column per (value, port)."""
    from PIL import Image as PILImage

    pics = [p for p in (to_rgb(v, port) for v, port in columns) if p is not None]
    if not pics:
        return None
    n = min(count, min(p.shape[0] for p in pics))
    h = max(p.shape[2] for p in pics)
    w = max(p.shape[3] for p in pics)
    cols = [F.interpolate(p[:n], size=(h, w), mode="nearest") for p in pics]
    pad = 2
    grid = torch.ones(3, n * (h + pad) + pad, len(cols) * (w + pad) + pad)
    for r in range(n):
        for c, col in enumerate(cols):
            y, x = pad + r * (h + pad), pad + c * (w + pad)
            grid[:, y:y + h, x:x + w] = col[r]
    arr = (grid.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    PILImage.fromarray(arr).save(tmp, format="PNG")
    tmp.replace(path)
    return path
