"""Corpus, byte-level tokenizer and deterministic held-out split for proxy training.

The default corpus is the Python standard library's own ``.py`` files on this machine
(``sysconfig.get_paths()["stdlib"]``, without site-packages): real code that exists on every
machine that runs this tool. Users may name text files or folders instead. Tokens are bytes
(vocabulary 256): no training, no unknown tokens, identical on every machine.

Split: each file goes to validation when ``crc32(relative path) % 100 < 100 * val_fraction``,
so the split does not depend on file order or on the seed.
"""

from __future__ import annotations

import os
import sysconfig
import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import numpy.typing as npt

from nas.evaluators.base import EvaluatorError

__all__ = [
    "VOCAB_SIZE",
    "Corpus",
    "default_corpus_paths",
    "load_corpus",
    "sample_windows",
]


VOCAB_SIZE = 256  # byte-level tokenizer
_SKIP_DIRS = ("site-packages", "dist-packages", "__pycache__")
_TEXT_SUFFIXES = (".py", ".txt", ".md", ".rst", ".c", ".h", ".json", ".yaml", ".yml", ".csv")


@dataclass(frozen=True, kw_only=True)
class Corpus:
    """Byte tokens of a corpus, split into training and validation streams."""

    train: npt.NDArray[np.uint8]
    val: npt.NDArray[np.uint8]
    files: int
    source: str

    def __post_init__(self) -> None:
        if self.train.size < 4096 or self.val.size < 4096:
            raise EvaluatorError(
                f"data: corpus {self.source!r} is too small "
                f"({self.train.size} train / {self.val.size} validation bytes; need >= 4096 each)"
            )

    def unigram_entropy_nats(self) -> float:
        """Entropy of the training bytes' unigram distribution (nats per token): the loss of
        the best model that ignores context, the bar a trained model must beat."""
        freq = np.bincount(self.train, minlength=VOCAB_SIZE).astype(np.float64)
        p = freq[freq > 0] / freq.sum()
        return float(-(p * np.log(p)).sum())


def default_corpus_paths() -> tuple[Path, ...]:
    return (Path(sysconfig.get_paths()["stdlib"]),)


def _list_files(root: Path, suffixes: tuple[str, ...]) -> list[Path]:
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise EvaluatorError(f"data: {root}: no such file or folder")
    out: list[Path] = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if d not in _SKIP_DIRS]  # prune, do not descend
        out.extend(Path(folder) / n for n in names if Path(n).suffix in suffixes)
    return out


@lru_cache(maxsize=4)
def load_corpus(
    paths: tuple[str, ...] = (), *, max_bytes: int = 8_000_000, val_fraction: float = 0.1
) -> Corpus:
    """Read and split a corpus. ``paths`` empty = the standard library's ``.py`` files.

    Files are taken in crc32 order of their relative path (a fixed pseudo-random order) until
    ``max_bytes`` is reached, so a cap samples the whole tree, not its first folders.
    """
    if not 0.0 < val_fraction < 0.5:
        raise EvaluatorError(f"val_fraction: must be in (0, 0.5), got {val_fraction!r}")
    roots = [Path(p) for p in paths] or list(default_corpus_paths())
    suffixes = (".py",) if not paths else _TEXT_SUFFIXES
    keyed: list[tuple[int, str, Path]] = []
    for root in roots:
        for f in _list_files(root, suffixes):
            rel = f.name if root.is_file() else str(f.relative_to(root))
            keyed.append((zlib.crc32(rel.encode()), rel, f))
    if not keyed:
        raise EvaluatorError(f"data: no text files under {', '.join(map(str, roots))}")
    keyed.sort()
    train: list[bytes] = []
    val: list[bytes] = []
    total = 0
    cut = round(100 * val_fraction)
    for key, _rel, f in keyed:
        try:
            data = f.read_bytes()
        except OSError:
            continue
        (val if key % 100 < cut else train).append(data)
        total += len(data)
        if total >= max_bytes:
            break
    return Corpus(
        train=np.frombuffer(b"".join(train), dtype=np.uint8).copy(),
        val=np.frombuffer(b"".join(val), dtype=np.uint8).copy(),
        files=len(train) + len(val),
        source=", ".join(map(str, roots)),
    )


def sample_windows(
    stream: npt.NDArray[np.uint8], *, rng: np.random.Generator, batch_size: int, seq_len: int
) -> npt.NDArray[np.int64]:
    """``batch_size`` random windows of ``seq_len + 1`` tokens (inputs and shifted targets)."""
    starts = rng.integers(0, stream.size - seq_len - 1, size=batch_size)
    idx = starts[:, None] + np.arange(seq_len + 1)[None, :]
    out: npt.NDArray[np.int64] = stream[idx].astype(np.int64)
    return out
