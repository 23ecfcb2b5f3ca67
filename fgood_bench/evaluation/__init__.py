"""Evaluation: OOD scorers on one forward pass, metrics, reports and plots."""
