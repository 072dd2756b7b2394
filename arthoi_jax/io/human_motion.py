"""Stage II's human motion on disk, and the interaction ground truth of synthetic HOI scenes.

`human_motion.npz` holds smplx's forward arguments with smplx's names and shapes (T frames):
  betas [1, B], global_orient [T, 3], body_pose [T, 63], left_hand_pose [T, 45], right_hand_pose [T, 45],
  jaw_pose [T, 3], leye_pose [T, 3], reye_pose [T, 3], expression [T, E], transl [T, 3] (axis-angles in
  radians, metres), plus scene_scale [] and scene_offset [3]: the body sits in the scene at
  scene_scale * smplx_output.vertices + scene_offset (the per-sequence human-to-scene alignment).
`human_motion.json` records the conventions: frame (world = camera of frame 0, OpenCV axes), units, fps, up
axis, joint set, flat_hand_mean, num_betas, gender, model file.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from arthoi_jax.body.model import BodyParams
from arthoi_jax.errors import BundleError
from arthoi_jax.io.outputs import write_atomic, write_json
from arthoi_jax.synthetic.hoi import HoiTruth

SMPLX_KEYS = ("betas", "global_orient", "body_pose", "left_hand_pose", "right_hand_pose", "jaw_pose", "leye_pose",
              "reye_pose", "expression", "transl")


def _npz(path: Path, arrays: dict) -> None:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    write_atomic(path, buf.getvalue())


def _load(path: Path) -> dict:
    if not path.is_file():
        raise BundleError(f"{path}: missing")
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except Exception as e:  # zip/format errors all mean a corrupt file
        raise BundleError(f"{path}: unreadable ({type(e).__name__}: {e})") from None


def save_human_motion(folder: Path, params: BodyParams, scale: float, offset: np.ndarray, *, fps: float,
                      up: np.ndarray, flat_hand_mean: bool, gender: str, model_file: str) -> None:
    """Writes human_motion.npz + human_motion.json into `folder`. params: BodyParams with a leading [T] axis."""
    T = params.global_orient.shape[0]
    flat = lambda x: np.asarray(x, np.float32).reshape(T, -1)  # noqa: E731
    arrays = {k: flat(getattr(params, k)) for k in SMPLX_KEYS if k != "betas"}
    arrays["betas"] = np.asarray(params.betas, np.float32).reshape(1, -1)
    arrays["scene_scale"] = np.float32(scale)
    arrays["scene_offset"] = np.asarray(offset, np.float32)
    _npz(Path(folder) / "human_motion.npz", arrays)
    write_json(Path(folder) / "human_motion.json", {
        "frame": "world = camera of frame 0, OpenCV axes (x right, y down, z forward); world-to-camera of frame 0 "
                 "is the identity (static camera)",
        "placement": "vertices_world = scene_scale * smplx(**params).vertices + scene_offset",
        "units": {"length": "metres", "rotation": "axis-angle, radians"},
        "fps": float(fps), "num_frames": int(T),
        "up_axis": [float(x) for x in up],
        "joint_set": "smplx output joints (127: 55 skeleton + 21 vertex keypoints + 51 face landmarks)",
        "flat_hand_mean": bool(flat_hand_mean), "use_pca": False,
        "num_betas": int(arrays["betas"].shape[1]), "num_expression": int(arrays["expression"].shape[1]),
        "gender": gender, "model_file": model_file,
    })


def load_human_motion(folder: Path) -> dict:
    """The arrays of human_motion.npz (smplx names and shapes, plus scene_scale and scene_offset)."""
    a = _load(Path(folder) / "human_motion.npz")
    missing = [k for k in SMPLX_KEYS + ("scene_scale", "scene_offset") if k not in a]
    if missing:
        raise BundleError(f"{folder}/human_motion.npz: missing array(s) {', '.join(missing)}")
    return a


def save_hoi_truth(folder: Path, truth: HoiTruth) -> None:
    _npz(Path(folder) / "hoi_truth.npz", {"contact_frames": truth.contact_frames, "handle": truth.handle,
                                          "boxes": truth.boxes, "up": truth.up,
                                          "floor_offset": np.float64(truth.floor_offset),
                                          "hand": np.array(truth.hand)})


def load_hoi_truth(folder: Path) -> HoiTruth | None:
    """The HOI ground truth a generate stage wrote, or None when the scene has no human."""
    path = Path(folder) / "hoi_truth.npz"
    if not path.exists():
        return None
    a = _load(path)
    try:
        return HoiTruth(contact_frames=a["contact_frames"], hand=str(a["hand"]), handle=a["handle"],
                        boxes=a["boxes"], up=a["up"], floor_offset=float(a["floor_offset"]))
    except KeyError as e:
        raise BundleError(f"{path}: missing array {e.args[0]}") from None
