"""Stage II losses (Eq. 9-12 and the contact and penetration terms): pure functions of arrays.

Sums over frames as in the paper; means over pixels and joints so that a term's size does not depend on the
image size (penetration sums over the body points: a few penetrating vertices must still count). Unweighted: Stage II multiplies by the config's lambdas.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from arthoi_jax.geometry.boxes import box_sdf

PENETRATION_NEIGHBOURS = 4  # surface points that must all see a body point behind them (see penetration_loss)


def render_loss(rgb: jnp.ndarray, silhouette: jnp.ndarray, image: jnp.ndarray, human_mask: jnp.ndarray,
                beta_h: float) -> jnp.ndarray:
    """L_r^h (Eq. 10) over F rendered frames. rgb [F, h, w, 3], image [F, h, w, 3] in [0, 1]; silhouette
    [F, h, w] the human's rendered coverage (occluded by the object), human_mask [F, h, w] in [0, 1].

    The colour term is taken inside the input human mask: the scene behind the person is not modelled.
    """
    m = human_mask[..., None]
    colour = jnp.sum(m * (rgb - image) ** 2, axis=(1, 2, 3)) / jnp.maximum(jnp.sum(m, axis=(1, 2, 3)), 1.0)
    sil = jnp.mean((silhouette - human_mask) ** 2, axis=(1, 2))
    return jnp.sum(colour + beta_h * sil)


def prior_loss(body_pose: jnp.ndarray, body_pose_init: jnp.ndarray, global_orient: jnp.ndarray,
               global_orient_init: jnp.ndarray, eta: float) -> jnp.ndarray:
    """L_p (Eq. 12): distance to the initialization (axis-angles, radians). body_pose [T, 21, 3]; global_orient
    [T, 3]; theta = the body pose, psi = the root orientation."""
    return jnp.sum((body_pose - body_pose_init) ** 2) + eta * jnp.sum((global_orient - global_orient_init) ** 2)


def foot_sliding_loss(foot_vertices: jnp.ndarray, contact: jnp.ndarray) -> jnp.ndarray:
    """L_fs (Eq. 12): squared foot-vertex displacement between consecutive contact frames.

    foot_vertices [T, F, 3] metres; contact [T, F] in [0, 1] (the label of the foot joint each vertex follows).
    """
    step = jnp.sum((foot_vertices[1:] - foot_vertices[:-1]) ** 2, -1)  # [T-1, F]
    w = contact[1:] * contact[:-1]
    return jnp.sum(jnp.mean(w * step, axis=1))


def smoothness_loss(joints: jnp.ndarray) -> jnp.ndarray:
    """L_s: squared joint acceleration (metres/frame^2), joints [T, J, 3]; 0 for T < 3."""
    acc = joints[2:] - 2 * joints[1:-1] + joints[:-2]
    return jnp.sum(jnp.mean(jnp.sum(acc**2, -1), axis=1))


def depth_anchor_loss(pelvis: jnp.ndarray, start: jnp.ndarray) -> jnp.ndarray:
    """Beyond the paper: the squared change of the pelvis's depth (z, camera-0 frame) from where Stage II started
    it, summed over frames. pelvis, start [T, 3] metres."""
    return jnp.sum((pelvis[:, 2] - start[:, 2]) ** 2)


def kinematic_loss(joints: jnp.ndarray, keypoints: jnp.ndarray, weights: jnp.ndarray,
                   sigma: float | None = None) -> jnp.ndarray:
    """L_k (Eq. 11): joints [T, K, 3] of the body against the 3D contact keypoints [T, K, 3], weights [T, K]
    (1 for a confident lifted keypoint, 0 otherwise). sigma (metres): Geman-McClure d^2 s^2 / (d^2 + s^2), equal
    to d^2 for d << s and bounded by s^2, so a keypoint lifted to a wrong depth cannot drag the body; None: the
    paper's squared distance."""
    d2 = jnp.sum((joints - keypoints) ** 2, -1)
    if sigma is not None:
        d2 = d2 * sigma**2 / (d2 + sigma**2)
    return jnp.sum(weights * d2)


def nearest(points: jnp.ndarray, surface: jnp.ndarray, valid: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Nearest surface point of each point. points [N, 3]; surface [S, 3]; valid [S] bool -> index [N] and
    squared distance [N]."""
    d2 = jnp.sum((points[:, None] - surface[None]) ** 2, -1)
    d2 = jnp.where(valid[None], d2, jnp.inf)
    idx = jnp.argmin(d2, axis=1)
    return idx, jnp.take_along_axis(d2, idx[:, None], 1)[:, 0]


def contact_loss(hand_points: jnp.ndarray, surface: jnp.ndarray, valid: jnp.ndarray,
                 contact: jnp.ndarray, tolerance: float = 0.0) -> jnp.ndarray:
    """Hand-object contact: on contact frames, the squared distance from the hand (its closest point) to the
    object surface, less `tolerance` metres (a distance within it costs nothing). hand_points [T, K, 3]; surface
    [T, S, 3]; valid [S]; contact [T] in [0, 1]. The closest pair is chosen without gradient; the distance
    between them is differentiated."""

    def frame(x, s):
        idx, d2 = nearest(jax.lax.stop_gradient(x), jax.lax.stop_gradient(s), valid)
        k = jnp.argmin(d2)
        if tolerance == 0.0:  # the paper's term (and its gradient at d = 0)
            return jnp.sum((x[k] - s[idx[k]]) ** 2)
        d = jnp.sqrt(jnp.sum((x[k] - s[idx[k]]) ** 2) + 1e-12)
        return jnp.maximum(d - tolerance, 0.0) ** 2

    return jnp.sum(contact * jax.vmap(frame)(hand_points, surface))


def penetration_loss(points: jnp.ndarray, surface: jnp.ndarray, normals: jnp.ndarray, valid: jnp.ndarray,
                     radius: float, margin: float = 0.0, neighbours: int = PENETRATION_NEIGHBOURS) -> jnp.ndarray:
    """Body points inside the object: behind each of their `neighbours` nearest surface points p (outward unit
    normals n) by more than `margin`, sd = (x - p) . n < -margin, and within `radius` of the nearest one.

    The surface is the visible shell of the object, so "inside" is local: requiring every near point to see x
    behind it (the intersection of their half-spaces) keeps a point in front of the adjacent face at an edge
    outside; the radius is the thickness the shell is assumed to have; the margin tolerates the grip's fingers
    a few millimetres into a handle. Beside a face the camera does not see (a box's far side), a point within
    the radius is still called inside: the shell alone cannot tell. The penalty is the squared depth past the
    margin behind the least deep plane (the nearest way out), summed over points: each penetrating vertex
    counts, however few there are. points [T, N, 3]; surface, normals [T, S, 3]; valid [S]; radius, margin m.
    """

    def frame(args):
        x, s, n = args
        d2 = jnp.sum((jax.lax.stop_gradient(x)[:, None] - jax.lax.stop_gradient(s)[None]) ** 2, -1)
        d2 = jnp.where(valid[None], d2, jnp.inf)
        neg, idx = jax.lax.top_k(-d2, min(neighbours, s.shape[0]))  # which points are nearest is not differentiated
        sd = jnp.max(jnp.sum((x[:, None] - s[idx]) * n[idx], -1), axis=1)  # [N] the least deep plane
        inside = (sd < -margin) & (-neg[:, 0] < radius**2)
        return jnp.sum(jnp.where(inside, (sd + margin) ** 2, 0.0))

    # One frame at a time: the [N, S] distance table of every frame at once would not fit in memory.
    return jnp.sum(jax.lax.map(frame, (points, surface, normals)))


def box_penetration_loss(points: jnp.ndarray, poses: jnp.ndarray, boxes: jnp.ndarray, margin: float = 0.0
                         ) -> jnp.ndarray:
    """Body points inside the parts' solid boxes (arthoi_jax.part_boxes): the squared depth past `margin` to the
    nearest box face, summed over points, parts and frames (each penetrating vertex counts). The gradient pushes
    a point out through that face. points [T, N, 3] world metres; poses [T, P, 4, 4] moving part p + 1 from
    frame 0 to frame t; boxes [P + 1, 5, 3] frame 0 (centre, axes as rows, half extents; 0 = static)."""
    eye = jnp.broadcast_to(jnp.eye(4, dtype=poses.dtype), poses.shape[:1] + (1, 4, 4))
    all_poses = jnp.concatenate([eye, poses], 1)  # [T, P + 1, 4, 4]
    R, t = all_poses[..., :3, :3], all_poses[..., :3, 3]
    x0 = jnp.einsum("tpji,tpnj->tpni", R, points[:, None] - t[:, :, None])  # back to frame 0 (R^T (x - t))
    # Each part's box on its own (sdf of a one-box union): a vertex inside two boxes counts twice.
    sdf = jax.vmap(jax.vmap(box_sdf, in_axes=(0, 0, 0, 0)), in_axes=(0, None, None, None))(
        x0, boxes[:, None, 0], boxes[:, None, 1:4], boxes[:, None, 4])  # [T, P + 1, N] < 0 inside
    return jnp.sum(jnp.maximum(-sdf - margin, 0.0) ** 2)
