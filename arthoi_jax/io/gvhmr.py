"""Import of GVHMR results (`hmr4d_results.pt`) as the bundle's SMPL-X initialization.

GVHMR's demo saves, with `torch.save`, a dict of
  smpl_params_global / smpl_params_incam: dicts of body_pose [T, 63], betas [T, 10], global_orient [T, 3],
                                          transl [T, 3] (float tensors)
  K_fullimg: [T, 3, 3] (or [3, 3]) intrinsics of the full image, pixels.
Both parameter sets are SMPL-X parameters whose body pose covers the 21 SMPL-X body joints
(`joint_names.SKELETON[1:22]`, 63 = 21 x 3 axis-angle).

* `smpl_params_incam` places the body in each frame's camera, OpenCV axes (x right, y down, z forward). The
  bundle's world is the camera of frame 0 and its camera is static, so these are imported unchanged as
  `SmplxParams` (`GvhmrResult.incam`).
* `smpl_params_global` is in GVHMR's gravity-aligned world: y up, origin and heading of the first frame. It is
  kept separately (`GvhmrResult.global_yup`) and is not in the bundle's frame.

Conversion choices (GVHMR estimates neither hands nor face): betas are the mean over frames (GVHMR predicts
them per frame); hand poses are zero with `flat_hand_mean=True` (open flat hands); jaw pose and expression
are zero; gender is neutral.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from arthoi_jax.errors import InputError, MissingDependencyError
from arthoi_jax.io.bundle import SmplxParams

PARAM_SETS = ("smpl_params_incam", "smpl_params_global")
_WIDTHS = {"body_pose": 63, "betas": 10, "global_orient": 3, "transl": 3}


@dataclasses.dataclass(frozen=True)
class GvhmrResult:
    incam: SmplxParams  # camera-0 (= bundle world) frame, OpenCV axes
    global_yup: SmplxParams  # GVHMR's gravity-aligned world, y up
    K: np.ndarray  # [T, 3, 3] float64 pixels
    betas_std: np.ndarray  # [10] per-frame spread of the averaged betas (incam), a quality hint


def read_gvhmr(path: str | Path, *, num_expression: int = 10, expected_frames: int | None = None) -> GvhmrResult:
    """Reads `hmr4d_results.pt` (tensors only: `torch.load(weights_only=True)`).

    Raises:
      MissingDependencyError: torch is not installed.
      InputError: the file is missing or unreadable, a key is missing, a shape is wrong, or the frame count
        differs from `expected_frames`.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: GVHMR results file not found")
    try:
        import torch
    except ImportError:
        raise MissingDependencyError("reading GVHMR results needs PyTorch: pip install torch") from None
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle, zip and torch errors all mean an unusable file
        raise InputError(f"{path}: not a readable torch file ({type(e).__name__}: {e})") from None
    return gvhmr_to_smplx(_to_numpy(data), num_expression=num_expression, expected_frames=expected_frames,
                          source=str(path))  # fmt: skip


def _to_numpy(x):
    if isinstance(x, Mapping):
        return {k: _to_numpy(v) for k, v in x.items()}
    if hasattr(x, "detach"):
        return x.detach().cpu().numpy()
    return x


def gvhmr_to_smplx(data: Mapping, *, num_expression: int = 10, expected_frames: int | None = None,
                   source: str = "GVHMR results") -> GvhmrResult:  # fmt: skip
    """Converts GVHMR's result dict (numpy arrays, the layout in the module docstring); see `read_gvhmr`."""
    if not isinstance(data, Mapping):
        raise InputError(f"{source}: expected a dict with keys {', '.join(PARAM_SETS)}, K_fullimg; "
                         f"got {type(data).__name__}")  # fmt: skip
    T = expected_frames
    sets = {}
    for name in PARAM_SETS:
        group = data.get(name)
        if not isinstance(group, Mapping):
            raise InputError(f"{source}: missing key {name!r} (a dict of {', '.join(_WIDTHS)})")
        arrays = {}
        for key, width in _WIDTHS.items():
            if key not in group:
                raise InputError(f"{source}: missing key {name}.{key} (expected shape [T, {width}])")
            x = np.asarray(group[key], np.float64)
            if x.ndim != 2 or x.shape[1] != width:
                raise InputError(f"{source}: {name}.{key} has shape {list(x.shape)}, expected [T, {width}]")
            if T is None:
                T = x.shape[0]
            elif x.shape[0] != T:
                what = "expected_frames" if expected_frames is not None else "other fields"
                raise InputError(f"{source}: {name}.{key} has {x.shape[0]} frames, but {what} say T={T}")
            if not np.all(np.isfinite(x)):
                bad = tuple(int(i) for i in np.argwhere(~np.isfinite(x))[0])
                raise InputError(f"{source}: {name}.{key} has a non-finite value at index {bad}")
            arrays[key] = x
        sets[name] = arrays
    if "K_fullimg" not in data:
        raise InputError(f"{source}: missing key 'K_fullimg' (expected shape [T, 3, 3])")
    K = np.asarray(data["K_fullimg"], np.float64)
    if K.shape == (3, 3):
        K = np.broadcast_to(K, (T, 3, 3)).copy()
    if K.shape != (T, 3, 3):
        raise InputError(f"{source}: K_fullimg has shape {list(K.shape)}, expected [T={T}, 3, 3]")
    if T < 1:
        raise InputError(f"{source}: no frames")
    incam, global_yup = (_params(sets[n], T, num_expression) for n in PARAM_SETS)
    return GvhmrResult(incam=incam, global_yup=global_yup, K=K,
                       betas_std=sets["smpl_params_incam"]["betas"].std(0).astype(np.float32))  # fmt: skip


def _params(a: dict, T: int, num_expression: int) -> SmplxParams:
    f32 = np.float32
    return SmplxParams(
        betas=a["betas"].mean(0).astype(f32),
        global_orient=a["global_orient"].astype(f32),
        body_pose=a["body_pose"].reshape(T, 21, 3).astype(f32),
        transl=a["transl"].astype(f32),
        left_hand_pose=np.zeros((T, 15, 3), f32),
        right_hand_pose=np.zeros((T, 15, 3), f32),
        jaw_pose=np.zeros((T, 3), f32),
        expression=np.zeros((T, num_expression), f32),
        flat_hand_mean=True,
        gender="neutral",
    )
