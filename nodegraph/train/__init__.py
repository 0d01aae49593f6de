"""Training engine: ``nodegraph train G`` optimises the trainable nodes of a graph end to end.

``loop.py`` (the Trainer), ``spec.py`` (the graph's ``train`` section), ``exec.py`` (grad mode per
node), ``data.py`` (loaders, seeds, torchrun), ``ckpt.py`` (atomic checkpoints), ``export.py``
(safetensors + manifest), ``log.py`` (progress, sample grids), ``cli.py`` (the click command,
which calls the loop; the loop never imports it). Guide: docs/training.md.
"""

from .cli import train_cli
from .loop import Trainer, TrainError, TrainResult, train

__all__ = ["TrainError", "TrainResult", "Trainer", "train", "train_cli"]
