"""The scene bundle: the one on-disk contract between preprocessing and optimization.

A bundle is a folder holding `meta.json` (version, scalars, text) and `arrays.npz` (every array, by the names
below). `save_bundle` writes it atomically; `load_bundle` validates it and names the first problem.

Conventions (fixed here, used everywhere):
  * Camera: OpenCV frame (x right, y down, z forward); the world frame is the camera of frame 0. A moving camera
    is given by per-frame world-to-camera extrinsics `T_cam_world` (version 2); None means a static camera.
  * Pixels: continuous image coordinates; pixel (row i, column j) covers [j, j+1) x [i, i+1), so its centre
    is (j + 0.5, i + 0.5). Tracks and keypoints are (x, y) in these coordinates; K maps camera points to them.
  * Units: metres, radians, seconds. Axis-angle rotations. Rigid transforms are 4x4 matrices.

Fields (T frames, H x W pixels, N tracks, P moving parts, B betas):
  frames          [T, H, W, 3] uint8   RGB
  fps             float > 0
  K               [3, 3] float64       intrinsics (fx, fy, cx, cy in pixels, zero skew)
  object_masks    [T, H, W] bool       whole articulated object (static and moving parts)
  human_masks     [T, H, W] bool
  tracks          [T, N, 2] float32    (x, y) pixels
  visibility      [T, N] bool
  depth           [H, W] float32       metric depth along z of frame 0; 0 where unknown
  prompt          str                  the text prompt ("" when none)
  smplx_init      SmplxParams | None   per-frame SMPL-X initialization (HMR), camera-0 frame
  hand_keypoints  [T, 2, 21, 2] float32 | None   (left, right) hand, MediaPipe/OpenPose 21-point order
  hand_keypoint_conf [T, 2, 21] float32 | None   in [0, 1]
  foot_contact    [T, 4] bool | None   order `FOOT_CONTACT_JOINTS`
  gt              GroundTruth | None   synthetic scenes only
  T_cam_world     [T, 4, 4] float64 | None   world-to-camera per frame, identity at frame 0 (v2; None: static)
  body_landmarks  [T, 33, 2] float32 | None  MediaPipe Pose's 33 landmarks, pixels (v2)
  body_landmark_conf [T, 33] float32 | None  in [0, 1]; 0 where no body was found (v2)

Versions: 1 (static camera only) still loads; 2 adds T_cam_world and the body landmarks. Saving writes 2.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Optional

import numpy as np

from arthoi_jax.errors import BundleError
from arthoi_jax.io.outputs import atomic_dir, conventions

BUNDLE_VERSION = 2
READABLE_VERSIONS = (1, 2)
FOOT_CONTACT_JOINTS = ("left_ankle", "left_foot", "right_ankle", "right_foot")
# Values of GroundTruth.part_ids; moving part p (0-based) has id MOVING_PART_ID0 + p.
BACKGROUND_ID, STATIC_PART_ID, MOVING_PART_ID0, HUMAN_ID = 0, 1, 2, 255
JOINT_TYPES = ("revolute", "prismatic")


@dataclasses.dataclass(frozen=True)
class SmplxParams:
    """SMPL-X parameters per frame, with smplx's names; rotations are axis-angle in radians.

    global_orient/transl place the body in the world (= camera-0) frame, OpenCV axes (y down).
    """

    betas: np.ndarray  # [B] float32
    global_orient: np.ndarray  # [T, 3] float32
    body_pose: np.ndarray  # [T, 21, 3] float32
    transl: np.ndarray  # [T, 3] float32, metres
    left_hand_pose: np.ndarray  # [T, 15, 3] float32 (full hand pose, not PCA)
    right_hand_pose: np.ndarray  # [T, 15, 3] float32
    jaw_pose: np.ndarray  # [T, 3] float32
    expression: np.ndarray  # [T, E] float32
    flat_hand_mean: bool = True
    gender: str = "neutral"


@dataclasses.dataclass(frozen=True)
class GroundTruth:
    """What a synthetic scene knows exactly. Poses are in the world (= camera-0) frame."""

    joint_types: tuple[str, ...]  # [P] "revolute" | "prismatic"
    axes: np.ndarray  # [P, 3] float64 unit joint axes
    pivots: np.ndarray  # [P, 3] float64 a point on each axis, metres
    joint_values: np.ndarray  # [T, P] float64 radians (revolute) or metres (prismatic), 0 at frame 0
    part_poses: np.ndarray  # [T, P, 4, 4] float64 maps a part's frame-0 points to frame t
    part_ids: np.ndarray  # [T, H, W] uint8, see BACKGROUND_ID etc.
    depth: np.ndarray  # [T, H, W] float32 metres, 0 where no surface
    tracks: np.ndarray  # [T, M, 2] float32 exact projections of surface points
    visibility: np.ndarray  # [T, M] bool
    track_part: np.ndarray  # [M] uint8 part id each GT track was sampled on
    human: Optional[SmplxParams] = None


@dataclasses.dataclass(frozen=True)
class SceneBundle:
    frames: np.ndarray
    fps: float
    K: np.ndarray
    object_masks: np.ndarray
    human_masks: np.ndarray
    tracks: np.ndarray
    visibility: np.ndarray
    depth: np.ndarray
    prompt: str = ""
    smplx_init: Optional[SmplxParams] = None
    hand_keypoints: Optional[np.ndarray] = None
    hand_keypoint_conf: Optional[np.ndarray] = None
    foot_contact: Optional[np.ndarray] = None
    gt: Optional[GroundTruth] = None
    T_cam_world: Optional[np.ndarray] = None
    body_landmarks: Optional[np.ndarray] = None
    body_landmark_conf: Optional[np.ndarray] = None

    @property
    def num_frames(self) -> int:
        return self.frames.shape[0]

    @property
    def image_size(self) -> tuple[int, int]:
        """(height, width) in pixels."""
        return self.frames.shape[1], self.frames.shape[2]


# ---------------------------------------------------------------------------------------------------------
# Validation. Each rule names the field and what was expected; the first failing rule is reported.

# dtype kind: "u8" uint8, "b" bool, "f" floating, "i" integer. Shape symbols are bound on first use.
_SPEC = {
    "frames": ("u8", ("T", "H", "W", 3)),
    "K": ("f", (3, 3)),
    "object_masks": ("b", ("T", "H", "W")),
    "human_masks": ("b", ("T", "H", "W")),
    "tracks": ("f", ("T", "N", 2)),
    "visibility": ("b", ("T", "N")),
    "depth": ("f", ("H", "W")),
    "hand_keypoints": ("f", ("T", 2, 21, 2)),
    "hand_keypoint_conf": ("f", ("T", 2, 21)),
    "foot_contact": ("b", ("T", 4)),
    "T_cam_world": ("f", ("T", 4, 4)),
    "body_landmarks": ("f", ("T", 33, 2)),
    "body_landmark_conf": ("f", ("T", 33)),
}
_OPTIONAL = ("hand_keypoints", "hand_keypoint_conf", "foot_contact", "T_cam_world", "body_landmarks",
             "body_landmark_conf")
_SMPLX_SPEC = {
    "betas": ("f", ("B",)),
    "global_orient": ("f", ("T", 3)),
    "body_pose": ("f", ("T", 21, 3)),
    "transl": ("f", ("T", 3)),
    "left_hand_pose": ("f", ("T", 15, 3)),
    "right_hand_pose": ("f", ("T", 15, 3)),
    "jaw_pose": ("f", ("T", 3)),
    "expression": ("f", ("T", "E")),
}
_GT_SPEC = {
    "axes": ("f", ("P", 3)),
    "pivots": ("f", ("P", 3)),
    "joint_values": ("f", ("T", "P")),
    "part_poses": ("f", ("T", "P", 4, 4)),
    "part_ids": ("u8", ("T", "H", "W")),
    "depth": ("f", ("T", "H", "W")),
    "tracks": ("f", ("T", "M", 2)),
    "visibility": ("b", ("T", "M")),
    "track_part": ("u8", ("M",)),
}
_KIND_NAMES = {"u8": "uint8", "b": "bool", "f": "a floating dtype", "i": "an integer dtype"}


def _check_array(name: str, x, kind: str, shape: tuple, dims: dict) -> None:
    if not isinstance(x, np.ndarray):
        raise BundleError(f"{name}: expected a numpy array, got {type(x).__name__}")
    ok = {
        "u8": x.dtype == np.uint8,
        "b": x.dtype == np.bool_,
        "f": np.issubdtype(x.dtype, np.floating),
        "i": np.issubdtype(x.dtype, np.integer),
    }[kind]
    if not ok:
        raise BundleError(f"{name}: expected dtype {_KIND_NAMES[kind]}, got {x.dtype}")
    pattern = "[" + ", ".join(str(s) for s in shape) + "]"
    if x.ndim != len(shape):
        raise BundleError(f"{name}: expected shape {pattern}, got {list(x.shape)}")
    for size, sym in zip(x.shape, shape):
        if isinstance(sym, int):
            if size != sym:
                raise BundleError(f"{name}: expected shape {pattern}, got {list(x.shape)}")
        elif sym in dims and dims[sym] != size:
            raise BundleError(
                f"{name}: shape {list(x.shape)} has {sym}={size}, but other fields have {sym}={dims[sym]}"
            )
        else:
            dims[sym] = size
    if kind == "f" and not np.all(np.isfinite(x)):
        bad = np.argwhere(~np.isfinite(x))[0]
        raise BundleError(f"{name}: non-finite value {x[tuple(bad)]} at index {tuple(int(i) for i in bad)}")


def validate_bundle(b: SceneBundle) -> None:
    """Checks shapes, dtypes, ranges, finiteness and consistent sizes; raises BundleError on the first problem."""
    if not isinstance(b, SceneBundle):
        raise BundleError(f"expected a SceneBundle, got {type(b).__name__}")
    dims: dict = {}
    for name, (kind, shape) in _SPEC.items():
        x = getattr(b, name)
        if x is None and name in _OPTIONAL:
            continue
        _check_array(name, x, kind, shape, dims)
    if (b.hand_keypoints is None) != (b.hand_keypoint_conf is None):
        raise BundleError("hand_keypoints and hand_keypoint_conf must be given together")
    if (b.body_landmarks is None) != (b.body_landmark_conf is None):
        raise BundleError("body_landmarks and body_landmark_conf must be given together")
    T, H, W = dims["T"], dims["H"], dims["W"]
    if T < 2:
        raise BundleError(f"frames: need at least 2 frames, got T={T}")
    if not isinstance(b.fps, (int, float)) or isinstance(b.fps, bool) or not math.isfinite(b.fps) or b.fps <= 0:
        raise BundleError(f"fps: expected a finite number > 0, got {b.fps!r}")
    K = b.K
    if K[0, 0] <= 0 or K[1, 1] <= 0:
        raise BundleError(f"K: focal lengths must be positive, got fx={K[0, 0]}, fy={K[1, 1]}")
    if K[0, 1] != 0 or np.any(K[2] != [0, 0, 1]) or K[1, 0] != 0:
        raise BundleError(f"K: expected [[fx, 0, cx], [0, fy, cy], [0, 0, 1]], got {K.tolist()}")
    if not (0 <= K[0, 2] <= W and 0 <= K[1, 2] <= H):
        raise BundleError(f"K: principal point ({K[0, 2]}, {K[1, 2]}) lies outside the {W}x{H} image")
    if np.any(b.depth < 0):
        raise BundleError(f"depth: negative values (min {b.depth.min()}); use 0 for unknown depth")
    if not b.object_masks[0].any():
        raise BundleError("object_masks: frame 0 is empty; the object must be visible in frame 0")
    if np.any(b.depth[b.object_masks[0]] <= 0):
        raise BundleError("depth: must be > 0 on every pixel of the frame-0 object mask")
    x, y = b.tracks[..., 0], b.tracks[..., 1]
    outside = b.visibility & ((x < 0) | (x > W) | (y < 0) | (y > H))
    if outside.any():
        t, n = np.argwhere(outside)[0]
        raise BundleError(
            f"tracks: visible point {n} at frame {t} is at {b.tracks[t, n].tolist()}, outside the {W}x{H} image"
        )
    if not isinstance(b.prompt, str):
        raise BundleError(f"prompt: expected a string, got {type(b.prompt).__name__}")
    for name in ("hand_keypoint_conf", "body_landmark_conf"):
        conf = getattr(b, name)
        if conf is not None and conf.size and (conf.min() < 0 or conf.max() > 1):
            raise BundleError(f"{name}: expected values in [0, 1]")
    if b.T_cam_world is not None:
        _validate_extrinsics(b.T_cam_world)
    if b.smplx_init is not None:
        _validate_smplx("smplx_init", b.smplx_init, T)
    if b.gt is not None:
        _validate_gt(b.gt, T, H, W)


def _validate_extrinsics(T_cw: np.ndarray) -> None:
    if np.abs(T_cw[0] - np.eye(4)).max() > 1e-6:
        raise BundleError("T_cam_world: frame 0 must be the identity (the world frame is the camera of frame 0)")
    if np.abs(T_cw[:, 3] - [0, 0, 0, 1]).max() > 1e-9:
        raise BundleError("T_cam_world: the last row of every matrix must be [0, 0, 0, 1]")
    R = T_cw[:, :3, :3]
    err = np.abs(R @ np.swapaxes(R, 1, 2) - np.eye(3)).max(axis=(1, 2))
    det = np.linalg.det(R)
    bad = np.flatnonzero((err > 1e-4) | (det < 0))
    if bad.size:
        t = int(bad[0])
        raise BundleError(f"T_cam_world: frame {t} is not a rigid transform (|R R^T - I| = {err[t]:.2g}, det R = {det[t]:.3g})")


def _validate_smplx(prefix: str, p: SmplxParams, T: int) -> None:
    if not isinstance(p, SmplxParams):
        raise BundleError(f"{prefix}: expected SmplxParams, got {type(p).__name__}")
    dims = {"T": T}
    for name, (kind, shape) in _SMPLX_SPEC.items():
        _check_array(f"{prefix}.{name}", getattr(p, name), kind, shape, dims)
    if not isinstance(p.flat_hand_mean, bool):
        raise BundleError(f"{prefix}.flat_hand_mean: expected a bool, got {p.flat_hand_mean!r}")
    if p.gender not in ("neutral", "male", "female"):
        raise BundleError(f"{prefix}.gender: {p.gender!r} is not one of 'neutral', 'male', 'female'")


def _validate_gt(g: GroundTruth, T: int, H: int, W: int) -> None:
    dims = {"T": T, "H": H, "W": W}
    for name, (kind, shape) in _GT_SPEC.items():
        _check_array(f"gt.{name}", getattr(g, name), kind, shape, dims)
    P = dims["P"]
    if len(g.joint_types) != P:
        raise BundleError(f"gt.joint_types: {len(g.joint_types)} entries for {P} moving parts")
    for jt in g.joint_types:
        if jt not in JOINT_TYPES:
            raise BundleError(f"gt.joint_types: {jt!r} is not one of {JOINT_TYPES}")
    norms = np.linalg.norm(g.axes, axis=-1)
    if np.any(np.abs(norms - 1) > 1e-6):
        raise BundleError(f"gt.axes: expected unit vectors, got norms {norms.tolist()}")
    if g.human is not None:
        _validate_smplx("gt.human", g.human, T)


# ---------------------------------------------------------------------------------------------------------
# Disk format.


def _flatten(b: SceneBundle) -> tuple[dict, dict]:
    arrays, meta = {}, {"version": BUNDLE_VERSION, "fps": float(b.fps), "prompt": b.prompt,
                        "conventions": conventions(b.fps)}  # for readers of the files; not read back
    for f in dataclasses.fields(SceneBundle):
        v = getattr(b, f.name)
        if isinstance(v, np.ndarray):
            arrays[f.name] = v
    for prefix, group in (("smplx_init", b.smplx_init), ("gt", b.gt), ("gt.human", b.gt and b.gt.human)):
        if group is None:
            continue
        extra = {}
        for f in dataclasses.fields(group):
            v = getattr(group, f.name)
            if isinstance(v, np.ndarray):
                arrays[f"{prefix}.{f.name}"] = v
            elif not dataclasses.is_dataclass(v) and v is not None:
                extra[f.name] = list(v) if isinstance(v, tuple) else v
        meta[prefix] = extra
    return arrays, meta


def save_bundle(b: SceneBundle, path: str | Path, *, overwrite: bool = False) -> Path:
    """Validates `b` and writes it to folder `path` atomically (a temporary folder, then a rename).

    Raises:
      BundleError: `b` is invalid, or `path` exists and `overwrite` is False.
    """
    validate_bundle(b)
    path = Path(path)
    if path.exists() and not overwrite:
        raise BundleError(f"{path}: a bundle already exists there; pass overwrite=True to replace it")
    arrays, meta = _flatten(b)
    with atomic_dir(path, overwrite=True) as tmp:
        np.savez_compressed(tmp / "arrays.npz", **arrays)
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2))
    return path


def load_bundle(path: str | Path) -> SceneBundle:
    """Reads and validates the bundle in folder `path`.

    Raises:
      BundleError: a file is missing or unreadable, the version is unknown, or a validation rule fails.
    """
    path = Path(path)
    meta_path, arrays_path = path / "meta.json", path / "arrays.npz"
    for p in (meta_path, arrays_path):
        if not p.is_file():
            raise BundleError(f"{path}: not a scene bundle (missing {p.name})")
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise BundleError(f"{meta_path}: unreadable ({e})") from None
    if not isinstance(meta, dict):
        raise BundleError(f"{meta_path}: expected a JSON object")
    version = meta.get("version")
    if version not in READABLE_VERSIONS:
        readable = ", ".join(map(str, READABLE_VERSIONS))
        raise BundleError(f"{meta_path}: bundle version {version!r} is not supported (this code reads {readable})")
    try:
        with np.load(arrays_path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as e:  # zipfile/pickle/value errors all mean a corrupt file
        raise BundleError(f"{arrays_path}: unreadable ({type(e).__name__}: {e})") from None
    try:
        b = _unflatten(arrays, meta)
    except KeyError as e:
        raise BundleError(f"{path}: missing field {e.args[0]!r}") from None
    except TypeError as e:
        raise BundleError(f"{path}: malformed fields ({e})") from None
    validate_bundle(b)
    return b


def _require(cls, kw: dict, prefix: str) -> None:
    for f in dataclasses.fields(cls):
        if f.default is dataclasses.MISSING and f.name not in kw:
            raise KeyError(f"{prefix}{f.name}")


def _group(cls, prefix: str, arrays: dict, meta: dict, **extra):
    names = [f.name for f in dataclasses.fields(cls)]
    kw = {n: arrays[f"{prefix}.{n}"] for n in names if f"{prefix}.{n}" in arrays}
    kw.update({k: v for k, v in meta.get(prefix, {}).items() if k in names})
    kw.update(extra)
    _require(cls, kw, f"{prefix}.")
    return cls(**kw)


def _unflatten(arrays: dict, meta: dict) -> SceneBundle:
    top = {f.name for f in dataclasses.fields(SceneBundle)}
    kw = {k: v for k, v in arrays.items() if k in top}
    kw["fps"] = meta["fps"]
    _require(SceneBundle, kw, "")
    smplx_init = _group(SmplxParams, "smplx_init", arrays, meta) if "smplx_init" in meta else None
    gt = None
    if "gt" in meta:
        human = _group(SmplxParams, "gt.human", arrays, meta) if "gt.human" in meta else None
        g = meta["gt"]
        gt = _group(GroundTruth, "gt", arrays, {"gt": {**g, "joint_types": tuple(g.get("joint_types", ()))}}, human=human)
    return SceneBundle(prompt=meta.get("prompt", ""), smplx_init=smplx_init, gt=gt, **kw)
