"""nodegraph: a node-based graph engine for GAN image pipelines."""
