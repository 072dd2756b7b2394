"""Run folders and atomic writes: results appear whole or not at all, and are never overwritten silently.

A run folder holds one sub-folder per stage (`generate/`, `stage1/`, ...). A stage writes into a hidden
temporary folder beside it and renames it into place when it has finished, so a crash leaves the previous
result (if any) intact.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from arthoi_jax.errors import OutputExistsError


def prepare_run_dir(out: Path, *, resume: bool, overwrite: bool) -> Path:
    """Creates `out`, refusing a folder that already holds results unless resume or overwrite is set."""
    out = Path(out)
    if out.exists() and any(p for p in out.iterdir() if not p.name.startswith(".")) and not (resume or overwrite):
        raise OutputExistsError(
            f"{out} already holds results; pass --resume to continue that run or --overwrite to replace it"
        )
    out.mkdir(parents=True, exist_ok=True)
    return out


@contextlib.contextmanager
def atomic_dir(path: Path, *, overwrite: bool):
    """Yields a temporary folder that replaces `path` only when the block finishes without error."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path} exists; pass --overwrite to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp.", dir=path.parent))
    try:
        yield tmp
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old)
        else:
            os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_atomic(path: Path, data: bytes) -> None:
    """Writes bytes to `path` through a temporary file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_json(path: Path, obj) -> None:
    """Atomically writes `obj` as indented JSON (numpy scalars and arrays become plain numbers and lists)."""

    def default(x):
        if isinstance(x, np.ndarray):
            return x.tolist()
        if isinstance(x, np.generic):
            return x.item()
        raise TypeError(f"cannot write {type(x).__name__} as JSON")

    write_atomic(path, (json.dumps(obj, indent=2, default=default) + "\n").encode())
