"""Benchmark audits: near-duplicate leakage between image sets (perceptual hashing)."""
