"""Split manifests: versioned, checksummed, deterministic files that anyone can publish and verify."""
