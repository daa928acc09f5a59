"""vmlab: a lab kit for learning how virtual machines work by measuring them."""

__version__ = "0.1.0"
