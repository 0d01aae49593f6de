"""Stacked attribute -> shape -> image GAN (Zhao, "Realistic Image Generation via Cross-domain
Information"): conditioning augmentation, Stage-I attribute2shape, Stage-II shape2image, the
Markovian and conditional discriminators. Nodes: ``nodes.stacked.nodes``."""
