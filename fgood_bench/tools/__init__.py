"""Shared image, model and runtime tools that every pipeline stage uses (docs/architecture.md)."""
