"""Hardware-aware architecture search for transformer and MoE language models."""

from __future__ import annotations

__all__ = ["__version__"]


__version__ = "0.1.0"
