"""A tiny analytic articulated scene for Stage I tests (ray-cast planes, numpy), independent of the synthetic
generator: a textured cabinet body (static part) with a door (revolute) or drawer front (prismatic), in front of
a textured wall, seen obliquely. Exact depth, part ids, GT poses and GT tracks."""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from arthoi_jax.io.bundle import GroundTruth, SceneBundle

BODY = (-0.6, 0.6, -0.6, 0.6)  # x0, x1, y0, y1 in the object frame, plane z = 0
FRONT = (-0.4, 0.4, -0.5, 0.5)  # moving part, plane z = -0.05 at rest
FRONT_Z, WALL_Z = -0.02, 0.3


def _texture(q: np.ndarray, seed: int, base) -> np.ndarray:
    rng = np.random.default_rng(seed)
    v = np.zeros(q.shape[:-1])
    for _ in range(6):
        f = rng.uniform(8, 40, size=2) * rng.choice([-1, 1], size=2)
        v += np.sin(q[..., 0] * f[0] + q[..., 1] * f[1] + rng.uniform(0, 6.3))
    v = 0.5 + v / 12.0
    return np.clip(np.asarray(base)[None] * (0.35 + 0.9 * v[..., None]), 0, 1)


def _hit_plane(o, d, z, rect):
    t = (z - o[..., 2]) / np.where(np.abs(d[..., 2]) > 1e-12, d[..., 2], 1e-12)
    p = o + t[..., None] * d
    ok = (t > 0) & (p[..., 0] >= rect[0]) & (p[..., 0] <= rect[1]) & (p[..., 1] >= rect[2]) & (p[..., 1] <= rect[3])
    return np.where(ok, t, np.inf), p


def make_scene(kind: str = "door", width: int = 64, height: int = 48, num_frames: int = 6, max_value=None,
               yaw_deg: float = 15.0, texture: bool = True) -> SceneBundle:
    """kind: "door" (revolute about the front's left edge) | "drawer" (prismatic, out of the body)."""
    max_value = (np.deg2rad(50.0) if kind == "door" else 0.25) if max_value is None else max_value
    f = 0.5 * width / np.tan(np.deg2rad(30))
    K = np.array([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1.0]])
    R_obj = Rotation.from_euler("y", yaw_deg, degrees=True).as_matrix()
    c_obj = np.array([0.0, 0.0, 2.6])
    vals = max_value * np.sin(np.linspace(0, np.pi / 2, num_frames)) ** 2
    pivot_l = np.array([FRONT[0], 0.0, FRONT_Z])
    axis_l = np.array([0.0, 1.0, 0.0]) if kind == "door" else np.array([0.0, 0.0, -1.0])

    def local_pose(v):  # object-frame transform of the moving part
        T = np.eye(4)
        if kind == "door":
            R = Rotation.from_rotvec(axis_l * v).as_matrix()
            T[:3, :3], T[:3, 3] = R, pivot_l - R @ pivot_l
        else:
            T[:3, 3] = v * axis_l
        return T

    T_obj = np.eye(4)
    T_obj[:3, :3], T_obj[:3, 3] = R_obj, c_obj
    ys, xs = np.mgrid[0:height, 0:width] + 0.5
    d_cam = np.stack([(xs - K[0, 2]) / f, (ys - K[1, 2]) / f, np.ones_like(xs)], -1)
    o_l = np.broadcast_to(R_obj.T @ (-c_obj), d_cam.shape)
    d_l = d_cam @ R_obj  # R^T d per pixel
    frames, ids, depths, poses = [], [], [], []
    for v in vals:
        Tl = local_pose(v)
        Tinv = np.linalg.inv(Tl)
        o_c = o_l @ Tinv[:3, :3].T + Tinv[:3, 3]
        d_c = d_l @ Tinv[:3, :3].T
        t_wall, p_wall = _hit_plane(o_l, d_l, WALL_Z, (-50, 50, -50, 50))
        t_body, p_body = _hit_plane(o_l, d_l, 0.0, BODY)
        t_front, p_front = _hit_plane(o_c, d_c, FRONT_Z, FRONT)
        ts = np.stack([t_wall, t_body, t_front])
        which = np.argmin(ts, 0)
        rgb = np.where((which == 0)[..., None], _texture(p_wall[..., :2], 1, (0.6, 0.6, 0.7)),
                       np.where((which == 1)[..., None], _texture(p_body[..., :2], 2, (0.8, 0.5, 0.3)),
                                _texture(p_front[..., :2] * (1 if texture else 0), 3, (0.3, 0.6, 0.4))))
        frames.append((rgb * 255).round().astype(np.uint8))
        ids.append(np.array([0, 1, 2], np.uint8)[which])
        depths.append((np.min(ts, 0) * d_cam[..., 2]).astype(np.float32))  # d_cam has z = 1
        poses.append(T_obj @ Tl @ np.linalg.inv(T_obj))
    frames, ids, depths, poses = map(np.stack, (frames, ids, depths, poses))
    # GT tracks: frame-0 pixels of the object on a 2-px grid, moved with their part and depth-tested.
    rows, cols = np.mgrid[1:height:2, 1:width:2]
    keep = ids[0, rows, cols] > 0
    rows, cols = rows[keep], cols[keep]
    uv0 = np.stack([cols + 0.5, rows + 0.5], -1)
    z0 = depths[0, rows, cols]
    X = np.stack([(uv0[:, 0] - K[0, 2]) / f * z0, (uv0[:, 1] - K[1, 2]) / f * z0, z0], -1)
    part = ids[0, rows, cols]
    tracks, vis = [], []
    for t in range(num_frames):
        P = np.where((part == 2)[:, None, None], poses[t][None], np.eye(4)[None])
        Xt = np.einsum("nij,nj->ni", P[:, :3, :3], X) + P[:, :3, 3]
        uv = Xt[:, :2] / Xt[:, 2:] * f + K[:2, 2]
        c = np.clip(np.floor(uv[:, 0]).astype(int), 0, width - 1)
        r = np.clip(np.floor(uv[:, 1]).astype(int), 0, height - 1)
        inside = (uv[:, 0] >= 0) & (uv[:, 0] < width) & (uv[:, 1] >= 0) & (uv[:, 1] < height)
        vis.append(inside & (np.abs(depths[t, r, c] - Xt[:, 2]) < 0.02) & (ids[t, r, c] == part))
        tracks.append(uv)
    tracks, vis = np.stack(tracks).astype(np.float32), np.stack(vis)
    axis_w, pivot_w = R_obj @ axis_l, R_obj @ pivot_l + c_obj
    gt = GroundTruth(joint_types=("revolute" if kind == "door" else "prismatic",), axes=axis_w[None],
                     pivots=pivot_w[None], joint_values=vals[:, None], part_poses=poses[:, None], part_ids=ids,
                     depth=depths, tracks=tracks, visibility=vis, track_part=part.astype(np.uint8))
    return SceneBundle(frames=frames, fps=30.0, K=K, object_masks=ids > 0, human_masks=np.zeros_like(ids, bool),
                       tracks=tracks, visibility=vis, depth=depths[0], gt=gt)
