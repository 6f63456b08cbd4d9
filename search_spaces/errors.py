"""User-facing error for bad model and search-space input."""

from __future__ import annotations


class SpecError(ValueError):
    """A model or space description is invalid.

    The message is one line naming the field (or file) and what is allowed, so the CLI can
    print it as is and exit 2.
    """
