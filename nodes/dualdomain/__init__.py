"""Dual-domain synthesis (Bazazian, Calway, Damen, CVPR-W 2022; official code
denabazazian/Dual-Domain-Synthesis): crossover of a source and a target-domain image along part
masks, and the mask-guided W+ optimisation that blends them through one generator.

- ``losses.py``: the naive crossover, the masked perceptual term, one pass's loss (D1 / D2).
- ``optimize.py``: the optimisation loop (mean-code init, fixed noise, Adam), ``compat`` modes.
- ``nodes.py``: ``dualdomain.Crossover``, ``dualdomain.LatentOptimize``.
"""
