"""fnd: a command-line lab for the foundations of neural networks (fastbook, chapter 17)."""

__version__ = "0.1.0"
