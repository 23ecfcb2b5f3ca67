"""Studies built from the pipeline's own commands (the random-split variance of the paper's Figure 2;
the hyperparameter sweep on validation outliers of Appendix D.3 and Table 4)."""
