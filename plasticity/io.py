"""Writing results all-or-nothing: a killed job never leaves a truncated file that looks complete."""
from __future__ import annotations

import glob
import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def _temporary_prefix(out: Path) -> str:
    return f".{out.stem}."


def write_atomically(out: str | Path, write: Callable[[str], None]) -> None:
    """Call `write(temporary path)` and move the file onto `out` in one step.

    A crash mid-write then never leaves a truncated file that Snakemake (or a reader) would take as complete.
    The temporary file sits in the same directory, so os.replace is an atomic rename; it keeps `out`'s suffix
    because writers such as matplotlib pick the format from it.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=out.parent, prefix=_temporary_prefix(out), suffix=out.suffix)
    os.close(handle)
    try:
        write(temporary)
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp creates 0600; give the file the usual permissions
        os.replace(temporary, out)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def remove_temporaries(out: str | Path) -> None:
    """Delete the temporary files that writes of `out` left behind when their process was killed mid-write."""
    out = Path(out)
    for temporary in out.parent.glob(f"{glob.escape(_temporary_prefix(out))}*{glob.escape(out.suffix)}"):
        temporary.unlink(missing_ok=True)
