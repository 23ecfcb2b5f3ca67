"""Studies built from the pipeline's own commands (the random-split variance of the paper's Figure 2)."""
