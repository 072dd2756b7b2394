"""Solid boxes of the object's parts for Stage II's penetration term (stage2_losses.box_penetration_loss) and the
arm refit's clearance (stage2_init.refit_arms).

The Stage I Gaussians are a shell: the faces camera 0 sees. A part's solid is taken as an oriented box around
its frame-0 Gaussians that extends `thickness_m` behind the visible face along the face's normal (the
least-variance axis of the points near it) turned away from the camera (a thickness prior; a part already
deeper keeps its depth).
The shell alone cannot call a point inside when it entered through a face the camera never sees (fridge_hoi:
the forearm crosses the swinging door's edge 1-2 cm deep, 7 cm from the nearest Gaussian). Thin protrusions
(a handle bar 2 cm thick with 1-5 Gaussians at 256 x 192) are left out of the box: the extents are robust
percentiles, so the fingers that grip the bar in front of the face are outside. The in-plane axes are those of
the smallest rectangle (robust extents) round the points, not their principal axes: a face seen in part (the
person in front of it) has principal axes turned off its edges (lid_hoi: 20-25 deg, its box 16 cm past the lid).
"""

from __future__ import annotations

import numpy as np

BOX_PERCENTILE = 2.0  # in-plane extents between these percentiles of a part's points (strays out)
# The visible face: this percentile of the points' depths. A handle and stray Gaussians lie in front of the face
# (drawer_hoi: the 2nd percentile 3.8 cm in front of the 10th, which is 0.2 cm from the median).
FRONT_PERCENTILE = 10.0
MIN_POINTS = 8  # a part seen by fewer Gaussians gets no box
FACE_BAND_M = 0.01  # points this close to the median depth fit the axes (a handle 5 cm in front does not)
ANGLE_STEPS = 180  # in-plane turns tried, over 90 degrees (see _in_plane)
# The turn is judged by extents between these percentiles: trimmed more, a turned rectangle loses its corners to
# the trim and looks smaller (a face with a hidden corner came out 6 deg off its edges at 2 %, on them at 0.5 %).
ANGLE_PERCENTILE = 0.5


def _axes(x: np.ndarray) -> np.ndarray:
    """Principal axes [3, 3] (rows, variance descending) of points x [N, 3]."""
    return np.linalg.svd(x - x.mean(0), full_matrices=False)[2]


def _in_plane(q: np.ndarray) -> np.ndarray:
    """The in-plane turn [2, 2] (rows: the box's first two axes in the frame of q) whose robust extents (the
    ANGLE_PERCENTILE percentiles) enclose the points q [N, 2] in the smallest area."""
    a = np.arange(ANGLE_STEPS) * (np.pi / 2 / ANGLE_STEPS)
    rot = np.stack([np.stack([np.cos(a), np.sin(a)], -1), np.stack([-np.sin(a), np.cos(a)], -1)], 1)  # [A, 2, 2]
    r = np.einsum("aij,nj->ani", rot, q)
    size = np.percentile(r, 100 - ANGLE_PERCENTILE, 1) - np.percentile(r, ANGLE_PERCENTILE, 1)  # [A, 2]
    return rot[np.argmin(size[:, 0] * size[:, 1])]


def part_boxes(means: np.ndarray, part: np.ndarray, num_parts: int, thickness_m: float, pad_m: float) -> np.ndarray:
    """Boxes [num_parts + 1, 5, 3] in frame 0 (world = camera 0; row p = part p, 0 the static body): centre,
    three unit axes, half extents (metres). means [N, 3] valid Gaussians at frame 0, part [N] their part labels.
    The in-plane extents grow by pad_m on each side (Gaussian centres sit inside the face's outline); the depth
    axis (third) points away from camera 0 and spans [front, front + max(thickness_m, seen depth)].
    The static body is left out (its box would span what it frames: a door frame's box holds the doorway the
    arm reaches through), and so is a part under MIN_POINTS Gaussians: half extents 0, no point is ever inside."""
    boxes = np.zeros((num_parts + 1, 5, 3), np.float32)
    boxes[:, 1:4] = np.eye(3)
    for p in range(1, num_parts + 1):
        x = np.asarray(means[part == p], np.float64)
        if len(x) < MIN_POINTS:
            continue
        axes = _axes(x)
        depth = (x - x.mean(0)) @ axes[2]
        face = np.abs(depth - np.median(depth)) < FACE_BAND_M
        if face.sum() >= MIN_POINTS:  # refitted without the points off the face, which tilt the axes
            axes = _axes(x[face])
        c = x.mean(0)
        if axes[2] @ c < 0:  # depth axis away from the camera centre (the origin)
            axes[2] = -axes[2]
        axes[:2] = _in_plane((x - c) @ axes[:2].T) @ axes[:2]
        axes[1] = np.cross(axes[2], axes[0])  # right-handed
        q = (x - c) @ axes.T
        lo, hi = np.percentile(q, BOX_PERCENTILE, 0), np.percentile(q, 100 - BOX_PERCENTILE, 0)
        lo[2] = np.percentile(q[:, 2], FRONT_PERCENTILE)
        lo[:2], hi[:2] = lo[:2] - pad_m, hi[:2] + pad_m
        hi[2] = max(hi[2], lo[2] + thickness_m)
        boxes[p, 0] = c + (lo + hi) / 2 @ axes
        boxes[p, 1:4] = axes
        boxes[p, 4] = (hi - lo) / 2
    return boxes


def posed_boxes(boxes: np.ndarray, poses: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The moving parts' boxes [P + 1, 5, 3] (part_boxes) at part poses [T, P, 4, 4] (frame 0 -> frame t) ->
    centres [T, P, 3], unit axes [T, P, 3, 3] (rows) and half extents [T, P, 3] (body.ik.Clearance's boxes)."""
    R, t = poses[..., :3, :3], poses[..., :3, 3]
    centre = np.einsum("tpij,pj->tpi", R, boxes[1:, 0]) + t
    axes = np.einsum("tpij,pkj->tpki", R, boxes[1:, 1:4])
    return centre, axes, np.broadcast_to(boxes[1:, 4], centre.shape).copy()
