"""Bad-input corpus, scene bundle: each case builds a broken bundle and checks the BundleError names the field."""

import dataclasses

import numpy as np
import pytest

from arthoi_jax.errors import BundleError
from arthoi_jax.io.bundle import validate_bundle
from tests.factories import tiny_bundle


def _replace(b, **kw):
    return dataclasses.replace(b, **kw)


def _gt(b, **kw):
    return dataclasses.replace(b, gt=dataclasses.replace(b.gt, **kw))


def _smplx(b, **kw):
    return dataclasses.replace(b, smplx_init=dataclasses.replace(b.smplx_init, **kw))


def _set(arr, index, value):
    arr = arr.copy()
    arr[index] = value
    return arr


B = tiny_bundle()
CASES = {
    "not_a_bundle": (lambda b: {"frames": 1}, r"expected a SceneBundle, got dict"),
    "frames_not_array": (lambda b: _replace(b, frames=b.frames.tolist()), r"frames: expected a numpy array, got list"),
    "frames_float": (lambda b: _replace(b, frames=b.frames.astype(np.float32)), r"frames: expected dtype uint8, got float32"),
    "frames_grey": (lambda b: _replace(b, frames=b.frames[..., 0]), r"frames: expected shape \[T, H, W, 3\], got \[3, 8, 10\]"),
    "frames_rgba": (lambda b: _replace(b, frames=np.concatenate([b.frames, b.frames[..., :1]], -1)), r"frames: expected shape \[T, H, W, 3\], got \[3, 8, 10, 4\]"),
    "mask_uint8": (lambda b: _replace(b, object_masks=b.object_masks.astype(np.uint8)), r"object_masks: expected dtype bool, got uint8"),
    "mask_wrong_T": (lambda b: _replace(b, human_masks=b.human_masks[:2]), r"human_masks: shape \[2, 8, 10\] has T=2, but other fields have T=3"),
    "mask_wrong_W": (lambda b: _replace(b, object_masks=b.object_masks[:, :, :9]), r"object_masks: shape \[3, 8, 9\] has W=9, but other fields have W=10"),
    "tracks_wrong_N": (lambda b: _replace(b, visibility=b.visibility[:, :4]), r"visibility: shape \[3, 4\] has N=4, but other fields have N=5"),
    "tracks_nan": (lambda b: _replace(b, tracks=_set(b.tracks, (1, 2, 0), np.nan)), r"tracks: non-finite value nan at index \(1, 2, 0\)"),
    "depth_inf": (lambda b: _replace(b, depth=_set(b.depth, (0, 0), np.inf)), r"depth: non-finite value inf at index \(0, 0\)"),
    "K_shape": (lambda b: _replace(b, K=b.K[:2]), r"K: expected shape \[3, 3\], got \[2, 3\]"),
    "hands_without_conf": (lambda b: _replace(b, hand_keypoint_conf=None), r"hand_keypoints and hand_keypoint_conf must be given together"),
    "one_frame": (lambda b: tiny_bundle(T=1), r"frames: need at least 2 frames, got T=1"),
    "fps_zero": (lambda b: _replace(b, fps=0.0), r"fps: expected a finite number > 0, got 0.0"),
    "fps_nan": (lambda b: _replace(b, fps=float("nan")), r"fps: expected a finite number > 0, got nan"),
    "fps_string": (lambda b: _replace(b, fps="30"), r"fps: expected a finite number > 0, got '30'"),
    "focal_negative": (lambda b: _replace(b, K=_set(b.K, (1, 1), -20.0)), r"K: focal lengths must be positive, got fx=20.0, fy=-20.0"),
    "K_skew": (lambda b: _replace(b, K=_set(b.K, (0, 1), 0.5)), r"K: expected \[\[fx, 0, cx\], \[0, fy, cy\], \[0, 0, 1\]\]"),
    "K_principal_outside": (lambda b: _replace(b, K=_set(b.K, (0, 2), 50.0)), r"K: principal point \(50.0, 4.0\) lies outside the 10x8 image"),
    "depth_negative": (lambda b: _replace(b, depth=_set(b.depth, (0, 0), -1.0)), r"depth: negative values \(min -1.0\)"),
    "object_empty_frame0": (lambda b: _replace(b, object_masks=_set(b.object_masks, 0, False)), r"object_masks: frame 0 is empty"),
    "depth_zero_on_object": (lambda b: _replace(b, depth=_set(b.depth, (3, 4), 0.0)), r"depth: must be > 0 on every pixel of the frame-0 object mask"),
    "track_outside": (lambda b: _replace(b, tracks=_set(b.tracks, (2, 1), [11.0, 3.0]), visibility=_set(b.visibility, (2, 1), True)), r"tracks: visible point 1 at frame 2 is at \[11.0, 3.0\], outside the 10x8 image"),
    "prompt_not_str": (lambda b: _replace(b, prompt=None), r"prompt: expected a string, got NoneType"),
    "hand_conf_range": (lambda b: _replace(b, hand_keypoint_conf=b.hand_keypoint_conf * 2), r"hand_keypoint_conf: expected values in \[0, 1\]"),
    "foot_contact_shape": (lambda b: _replace(b, foot_contact=b.foot_contact[:, :2]), r"foot_contact: expected shape \[T, 4\], got \[3, 2\]"),
    "smplx_wrong_type": (lambda b: _replace(b, smplx_init={"betas": 0}), r"smplx_init: expected SmplxParams, got dict"),
    "smplx_rotmat_pose": (lambda b: _smplx(b, body_pose=np.zeros((3, 21, 3, 3), np.float32)), r"smplx_init.body_pose: expected shape \[T, 21, 3\], got \[3, 21, 3, 3\]"),
    "smplx_wrong_T": (lambda b: _smplx(b, transl=np.zeros((4, 3), np.float32)), r"smplx_init.transl: shape \[4, 3\] has T=4, but other fields have T=3"),
    "smplx_flat_hand_mean": (lambda b: _smplx(b, flat_hand_mean="yes"), r"smplx_init.flat_hand_mean: expected a bool, got 'yes'"),
    "smplx_gender": (lambda b: _smplx(b, gender="x"), r"smplx_init.gender: 'x' is not one of 'neutral', 'male', 'female'"),
    "extrinsics_frame0_not_identity": (lambda b: _replace(b, T_cam_world=_set(b.T_cam_world, (0, 0, 3), 0.5)), r"T_cam_world: frame 0 must be the identity"),
    "extrinsics_not_rigid": (lambda b: _replace(b, T_cam_world=_set(b.T_cam_world, (2, 0, 0), 2.0)), r"T_cam_world: frame 2 is not a rigid transform"),
    "extrinsics_reflection": (lambda b: _replace(b, T_cam_world=_set(b.T_cam_world, (1, slice(0, 3), slice(0, 3)), np.diag([1.0, 1.0, -1.0]))), r"T_cam_world: frame 1 is not a rigid transform .*det R = -1"),
    "extrinsics_wrong_T": (lambda b: _replace(b, T_cam_world=b.T_cam_world[:2]), r"T_cam_world: shape \[2, 4, 4\] has T=2, but other fields have T=3"),
    "landmarks_without_conf": (lambda b: _replace(b, body_landmark_conf=None), r"body_landmarks and body_landmark_conf must be given together"),
    "landmark_conf_range": (lambda b: _replace(b, body_landmark_conf=b.body_landmark_conf - 1), r"body_landmark_conf: expected values in \[0, 1\]"),
    "gt_joint_count": (lambda b: _gt(b, joint_types=("revolute",)), r"gt.joint_types: 1 entries for 2 moving parts"),
    "gt_joint_type": (lambda b: _gt(b, joint_types=("revolute", "ball")), r"gt.joint_types: 'ball' is not one of \('revolute', 'prismatic'\)"),
    "gt_axis_not_unit": (lambda b: _gt(b, axes=b.gt.axes * 2), r"gt.axes: expected unit vectors, got norms \[2.0, 2.0\]"),
    "gt_pose_shape": (lambda b: _gt(b, part_poses=b.gt.part_poses[..., :3, :]), r"gt.part_poses: expected shape \[T, P, 4, 4\], got \[3, 2, 3, 4\]"),
    "gt_part_ids_size": (lambda b: _gt(b, part_ids=b.gt.part_ids[:, :7]), r"gt.part_ids: shape \[3, 7, 10\] has H=7, but other fields have H=8"),
    "gt_human_T": (lambda b: _gt(b, human=dataclasses.replace(b.gt.human, global_orient=np.zeros((2, 3), np.float32))), r"gt.human.global_orient: shape \[2, 3\] has T=2"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bundle_rejects(case):
    make, match = CASES[case]
    with pytest.raises(BundleError, match=match):
        validate_bundle(make(B))


