"""ifrl: self-supervised reinforcement learning for instruction following."""

__version__ = "0.1.0"
