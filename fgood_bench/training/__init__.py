"""Training and inference: image pipeline, torchvision models, the DDP-aware training loop."""
