"""The arrows: read → validate → transform → render → write/stage. The only module that chains them.

    conversion = convert([path], options)      # reads and checks everything; raises InputError
    paths = write(conversion, out_dir)         # renders file by file, atomically; all or nothing
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from gisgate.config import ConvertOptions
from gisgate.model import Batch, Output


@dataclass
class Conversion:
    """A checked conversion, ready to render. Rendering is lazy so large inputs stream to disk."""

    batch: Batch
    options: ConvertOptions
    inputs: list[Path]
    warnings: list[str] = field(default_factory=list)

    def outputs(self) -> Iterator[Output]:
        raise NotImplementedError

    def summary(self) -> dict:
        raise NotImplementedError


def convert(paths: list[Path], options: ConvertOptions) -> Conversion:
    raise NotImplementedError


def write(conversion: Conversion, out_dir: Path) -> list[Path]:
    raise NotImplementedError
