"""Ranking engine: classifier-ranked ID / holdout-OOD splits (paper section 3.1, Appendix A and B).

Import from the modules (``ranking.build``, ``ranking.scores``, ``ranking.stability``): this package
imports nothing, so that reading the class scores does not import torch."""
