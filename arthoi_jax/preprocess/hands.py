"""2D hand keypoints [T, 2, 21, 2] (left, right) in the 21-point MediaPipe/OpenPose order, with confidences.

Two sources:
  * projected from an HMR result: SMPL-X joints (smplx's output order, `smplx.joint_names.JOINT_NAMES`) in the
    camera-0 frame, projected with K. Confidence is 1 where the joint lies in front of the camera and inside
    the image, else 0: the HMR fit carries no per-joint detection score.
  * a supplied file (a hand detector's output) in source-video pixels, rescaled to the output size here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import smplx
import torch
from smplx.joint_names import JOINT_NAMES

from arthoi_jax.errors import InputError, ModelFileError

FINGERS = ("thumb", "index", "middle", "ring", "pinky")
# OpenPose/MediaPipe order: wrist, then per finger three joints from the palm out and the tip.
HAND_JOINT_NAMES = {
    side: [f"{side}_wrist"] + [n for f in FINGERS for n in (f"{side}_{f}1", f"{side}_{f}2", f"{side}_{f}3",
                                                             f"{side}_{f}")]
    for side in ("left", "right")
}
HAND_JOINT_INDEX = np.array([[JOINT_NAMES.index(n) for n in HAND_JOINT_NAMES[s]] for s in ("left", "right")])


def project_hand_joints(joints_cam: np.ndarray, K: np.ndarray, size_hw: tuple[int, int]):
    """Hand keypoints from SMPL-X joints.

    Args:
      joints_cam: [T, J, 3] metres, camera-0 frame (OpenCV axes), smplx's joint order (J >= 76: the 55
        skeleton joints plus the face, feet and fingertip landmarks smplx appends).
      K: [3, 3] intrinsics of the output frames; size_hw: (H, W) of the output frames.
    Returns:
      keypoints [T, 2, 21, 2] float32 pixels, confidence [T, 2, 21] float32.
    """
    joints_cam = np.asarray(joints_cam, np.float64)
    if joints_cam.ndim != 3 or joints_cam.shape[-1] != 3 or joints_cam.shape[1] <= HAND_JOINT_INDEX.max():
        raise InputError(f"joints: expected [T, J>={HAND_JOINT_INDEX.max() + 1}, 3] in smplx's joint order, "
                         f"got {list(joints_cam.shape)}")
    p = joints_cam[:, HAND_JOINT_INDEX]  # [T, 2, 21, 3]
    z = p[..., 2]
    in_front = z > 1e-6
    uv = p[..., :2] / np.where(in_front, z, 1.0)[..., None] * [K[0, 0], K[1, 1]] + [K[0, 2], K[1, 2]]
    H, W = size_hw
    inside = in_front & (uv[..., 0] >= 0) & (uv[..., 0] <= W) & (uv[..., 1] >= 0) & (uv[..., 1] <= H)
    uv = np.where(in_front[..., None], uv, 0.0)
    return uv.astype(np.float32), inside.astype(np.float32)


def rescale_hand_keypoints(keypoints: np.ndarray, confidence: np.ndarray, src_hw: tuple[int, int],
                           dst_hw: tuple[int, int], num_frames: int, frame_step: int = 1, what: str = "hand file"):
    """A detector's keypoints [T_src, 2, 21, 2] (source-video pixels, centres at +0.5) and confidence
    [T_src, 2, 21] in [0, 1] -> the output frames: subsampled by `frame_step`, cut to `num_frames`, scaled."""
    kp = np.asarray(keypoints, np.float64)
    conf = np.asarray(confidence, np.float64)
    if kp.ndim != 4 or kp.shape[1:] != (2, 21, 2):
        raise InputError(f"{what}: keypoints must be [T, 2, 21, 2] (left/right hand, 21 points, x/y), "
                         f"got {list(kp.shape)}")
    if conf.shape != kp.shape[:3]:
        raise InputError(f"{what}: confidence must be [T, 2, 21] = {list(kp.shape[:3])}, got {list(conf.shape)}")
    kp, conf = kp[::frame_step], conf[::frame_step]
    if len(kp) < num_frames:
        raise InputError(f"{what}: {len(kp)} frames of keypoints (after frame_step {frame_step}) "
                         f"for {num_frames} video frames")
    kp, conf = kp[:num_frames], conf[:num_frames]
    if not (np.isfinite(kp).all() and np.isfinite(conf).all()):
        raise InputError(f"{what}: non-finite keypoints or confidences (use confidence 0 for missing points)")
    if conf.min() < 0 or conf.max() > 1:
        raise InputError(f"{what}: confidences must lie in [0, 1], got [{conf.min()}, {conf.max()}]")
    scale = np.array([dst_hw[1] / src_hw[1], dst_hw[0] / src_hw[0]])
    return (kp * scale).astype(np.float32), conf.astype(np.float32)


def smplx_joints(params, model_path, device: str = "cpu") -> np.ndarray:
    """SMPL-X joints [T, J, 3] metres (smplx's output order) of `SmplxParams` in the camera-0 frame, computed
    with the `smplx` package from the model file (or folder) at `model_path` (config `body.model_path`).

    Raises ModelFileError when the model cannot be loaded.
    """
    path = Path(model_path)
    if not path.exists():
        raise ModelFileError(f"{path}: SMPL-X model not found (config body.model_path); see third_party/README.md")
    T = params.global_orient.shape[0]
    try:
        model = smplx.create(str(path), model_type="smplx", gender=params.gender, use_pca=False,
                             flat_hand_mean=params.flat_hand_mean, num_betas=params.betas.shape[0],
                             num_expression_coeffs=params.expression.shape[1], batch_size=T,
                             ext=path.suffix.lstrip(".") if path.is_file() else "npz")
    except (OSError, KeyError, ValueError, AssertionError) as e:
        raise ModelFileError(f"{path}: cannot load as an SMPL-X model ({type(e).__name__}: {e})") from None

    def f32(x):
        return torch.tensor(np.array(x, np.float32).reshape(T, -1), device=device)

    with torch.no_grad():
        out = model.to(device)(
            betas=f32(np.broadcast_to(params.betas, (T, params.betas.shape[0]))),
            global_orient=f32(params.global_orient), body_pose=f32(params.body_pose), transl=f32(params.transl),
            left_hand_pose=f32(params.left_hand_pose), right_hand_pose=f32(params.right_hand_pose),
            jaw_pose=f32(params.jaw_pose), leye_pose=f32(np.zeros((T, 3))), reye_pose=f32(np.zeros((T, 3))),
            expression=f32(params.expression),
        )
    return out.joints.cpu().numpy()
