"""Hardware-aware architecture search for transformer and MoE language models."""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]
