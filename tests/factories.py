"""Small hand-made inputs shared by tests."""

import dataclasses

import numpy as np

from arthoi_jax.io.bundle import GroundTruth, SceneBundle, SmplxParams


def tiny_smplx(T: int, rng: np.random.Generator, num_betas: int = 10) -> SmplxParams:
    f = lambda *s: rng.normal(0, 0.1, s).astype(np.float32)  # noqa: E731
    return SmplxParams(betas=f(num_betas), global_orient=f(T, 3), body_pose=f(T, 21, 3), transl=f(T, 3),
                       left_hand_pose=f(T, 15, 3), right_hand_pose=f(T, 15, 3), jaw_pose=f(T, 3),
                       expression=f(T, 10))


def tiny_bundle(T=3, H=8, W=10, N=5, *, optional=True, seed=0) -> SceneBundle:
    """A valid bundle with every field filled (optional ones too unless optional=False)."""
    rng = np.random.default_rng(seed)
    obj = np.zeros((T, H, W), bool)
    obj[:, 2:6, 3:8] = True
    tracks = np.stack([rng.uniform(0, W, (T, N)), rng.uniform(0, H, (T, N))], -1).astype(np.float32)
    K = np.array([[20.0, 0, W / 2], [0, 20.0, H / 2], [0, 0, 1]])
    b = SceneBundle(
        frames=rng.integers(0, 256, (T, H, W, 3), dtype=np.uint8), fps=30.0, K=K, object_masks=obj,
        human_masks=~obj, tracks=tracks, visibility=rng.random((T, N)) > 0.3,
        depth=rng.uniform(1, 3, (H, W)).astype(np.float32), prompt="a person opens the door",
    )
    if not optional:
        return b
    P = 2
    part_poses = np.tile(np.eye(4), (T, P, 1, 1))
    part_poses[:, :, :3, 3] = rng.normal(size=(T, P, 3))
    gt = GroundTruth(
        joint_types=("revolute", "prismatic"), axes=np.array([[0, 1.0, 0], [1.0, 0, 0]]),
        pivots=rng.normal(size=(P, 3)), joint_values=rng.normal(size=(T, P)), part_poses=part_poses,
        part_ids=rng.integers(0, 4, (T, H, W), dtype=np.uint8), depth=rng.uniform(1, 3, (T, H, W)).astype(np.float32),
        tracks=tracks[:, :4], visibility=np.ones((T, 4), bool), track_part=np.array([1, 2, 2, 3], np.uint8),
        human=tiny_smplx(T, rng),
    )
    return dataclasses.replace(
        b, smplx_init=tiny_smplx(T, rng), hand_keypoints=rng.uniform(0, 8, (T, 2, 21, 2)).astype(np.float32),
        hand_keypoint_conf=rng.uniform(0, 1, (T, 2, 21)).astype(np.float32),
        foot_contact=rng.random((T, 4)) > 0.5, gt=gt, T_cam_world=moving_camera(T, rng),
        body_landmarks=rng.uniform(0, 8, (T, 33, 2)).astype(np.float32),
        body_landmark_conf=rng.uniform(0, 1, (T, 33)).astype(np.float32),
    )


def moving_camera(T: int, rng: np.random.Generator) -> np.ndarray:
    """[T, 4, 4] world-to-camera extrinsics, identity at frame 0, small random rotations and translations after."""
    from scipy.spatial.transform import Rotation

    out = np.tile(np.eye(4), (T, 1, 1))
    out[1:, :3, :3] = Rotation.from_rotvec(rng.normal(0, 0.05, (T - 1, 3))).as_matrix()
    out[1:, :3, 3] = rng.normal(0, 0.1, (T - 1, 3))
    return out
