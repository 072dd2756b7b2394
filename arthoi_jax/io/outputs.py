"""Run folders and atomic writes: results appear whole or not at all, and are never overwritten silently.

A run folder holds one sub-folder per stage (`generate/`, `stage1/`, ...). A stage writes into a hidden
temporary folder beside it and renames it into place when it has finished, so a crash leaves the previous
result (if any) intact. A stage whose optimization diverged leaves `<stage>.failed/` instead: the last good
state (`last_good.npz`) and the error message (`error.txt`).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from arthoi_jax.errors import OptimizationError, OutputExistsError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


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
        tmp.chmod(0o777 & ~_umask())  # mkdtemp's 0700 would hide results from other users
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
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp's 0600 would hide results from other users
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


CAMERA_UP = (0.0, -1.0, 0.0)  # OpenCV y points down: "up" when the scene's gravity is unknown


def conventions(fps: float, up=None) -> dict:
    """The conventions block of every exported camera, pose and motion file: frame, camera model, units, fps and
    up axis (`up` [3] in the world frame; None: unknown, camera 0's -y assumed and said so)."""
    return {
        "frame": "world = camera of frame 0, OpenCV axes (x right, y down, z forward); camera extrinsics are "
                 "world-to-camera (T_cam_world), the identity at frame 0 (a static camera: every frame)",
        "units": {"length": "metres", "rotation": "radians", "time": "seconds", "pixels": "pixel (i, j) covers "
                  "[j, j+1) x [i, i+1); intrinsics K in pixels"},
        "fps": float(fps),
        "up_axis": [float(x) for x in (CAMERA_UP if up is None else up)],
        "up_axis_source": "assumed: -y of camera 0 (gravity not estimated)" if up is None else "scene",
    }


def failed_dir(stage_dir: Path) -> Path:
    """`<stage>.failed` beside a stage folder: where a diverged stage leaves its last good state."""
    stage_dir = Path(stage_dir)
    return stage_dir.with_name(f"{stage_dir.name}.failed")


def save_failed_state(stage_dir: Path, error: OptimizationError) -> OptimizationError:
    """Writes error.last_good to `<stage>.failed/last_good.npz` and the message to `error.txt` (atomically,
    replacing an earlier failure) -> the error with the file named in its message. An error without a state
    is returned as it is."""
    if not error.last_good:
        return error
    folder = failed_dir(stage_dir)
    with atomic_dir(folder, overwrite=True) as tmp:
        np.savez(tmp / "last_good.npz", **{k: np.asarray(v) for k, v in error.last_good.items()})
        write_atomic(tmp / "error.txt", f"{error}\n".encode())
    return OptimizationError(f"{error}; the last good state is in {folder / 'last_good.npz'}", error.last_good)
