"""``python -m nodegraph.train G ...`` (and ``torchrun --nproc_per_node 2 -m nodegraph.train G ...``)."""

from .cli import train_cli

train_cli()
