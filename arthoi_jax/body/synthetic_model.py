"""A license-free body model in the SMPL-X file format (pure: builds arrays, writes nothing).

`license_free_smplx_arrays()` returns the arrays of an SMPL-X model file, keyed and shaped as the official
`SMPLX_NEUTRAL.npz` (v1.0 layout: 10 shape + 10 expression components in `shapedirs`), so that both
`smplx.SMPLX(..., ext='npz')` and `arthoi_jax.body.model.BodyModel` load it. It is made, not learned:

* Skeleton: the real SMPL-X 55-joint hierarchy (`joint_names.PARENTS`), in a T-pose, y up, facing +z, left at
  +x, 1.72 m tall with the soles at y = -1.28 m (the scale and frame of the real template).
* Mesh: closed tubes with elliptic cross-sections and rounded caps along each limb chain (torso, neck+head,
  legs, feet, arms, palms, 5 fingers per hand) plus eyes, nose and ears; components overlap, they are not
  stitched. 10,980 vertices and 21,860 faces (SMPL-X: 10,475 and 20,908). smplx reads 21 keypoints off
  fixed vertex ids up to 9929, so the vertices nearest the nose, eyes, ears, toes, heels and finger tips are
  moved to exactly those ids.
* Skinning: each tube vertex belongs to the joint owning its stretch of the chain, blended smoothly (a
  Hann-window average of the owner label over ±3 cm along the tube, ±1 cm on fingers) into the neighbours;
  the chin and lower face follow the jaw.
* `J_regressor`: per joint, an affine combination of the nearest vertices of its region (rows sum to 1),
  corrected so that `J_regressor @ v_template` is exactly the designed joint.
* Shape blend shapes (10): stature, girth, leg length, shoulder width, belly, arm length, head size, hip
  width, chest depth, neck length, each about 1-6 cm per unit beta. Expression (10): jaw drop, smile, brow
  raise, pucker, cheek puff, frown, squint, nose wrinkle, lip press, one-sided smile (Gaussian bumps).
* Pose blend shapes (486 = 54 joints x 9): analytic, not learned: near each joint (weight 4 w_parent w_joint)
  a bulge of 1 cm x (1 - cos angle) along the radial direction, plus 0.1 x (omega x r) where omega is the
  axial vector of (R - R^T)/2, so every entry of R - I is exercised.
* Hands: PCA components (45 x 45, orthonormal rows): whole-hand curl, thumb curl, spread, index-vs-pinky
  curl, then a fixed-seed orthonormal completion; `hands_mean` a relaxed 0.15 rad curl.
* Landmarks: 51 static face landmarks on the face front (ray-cast along -z) and a 17-point jaw contour
  repeated for all 79 yaw rows of the dynamic table (the contour does not change with head yaw here).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from arthoi_jax.body import joint_names as jn

NUM_SHAPE, NUM_EXPRESSION = 10, 10
SOLE_Y = -1.28

# Rest joints of the left side and the midline (metres); right joints mirror x.
_LEFT_JOINTS = {
    "pelvis": (0.0, -0.35, 0.0), "spine1": (0.0, -0.24, -0.01), "spine2": (0.0, -0.12, -0.01),
    "spine3": (0.0, -0.06, -0.005), "neck": (0.0, 0.16, -0.01), "head": (0.0, 0.27, 0.0),
    "jaw": (0.0, 0.25, 0.035), "left_eye_smplhf": (0.032, 0.325, 0.085),
    "left_hip": (0.075, -0.43, 0.0), "left_knee": (0.10, -0.82, 0.0), "left_ankle": (0.085, -1.2, -0.04),
    "left_foot": (0.10, -1.255, 0.09),
    "left_collar": (0.075, 0.115, -0.01), "left_shoulder": (0.175, 0.125, -0.015),
    "left_elbow": (0.43, 0.13, -0.02), "left_wrist": (0.68, 0.13, -0.02),
}  # fmt: skip
# Fingers of the left hand: base z offset, segment lengths (3 joints + tip), thickness.
_FINGERS = {
    "index": (0.028, (0.038, 0.024, 0.021, 0.02), 0.0085),
    "middle": (0.005, (0.042, 0.027, 0.023, 0.021), 0.009),
    "ring": (-0.017, (0.039, 0.025, 0.021, 0.02), 0.0085),
    "pinky": (-0.036, (0.03, 0.019, 0.017, 0.017), 0.0075),
}
_KNUCKLE_X, _HAND_Y = 0.775, 0.128
_THUMB = ((0.705, 0.122, 0.028), (0.735, 0.117, 0.05), (0.762, 0.112, 0.066), (0.79, 0.107, 0.078))


def _left_skeleton() -> dict[str, np.ndarray]:
    j = {k: np.array(v, float) for k, v in _LEFT_JOINTS.items()}
    for name, (z, lengths, _) in _FINGERS.items():
        x = _KNUCKLE_X
        for i in range(3):
            j[f"left_{name}{i + 1}"] = np.array([x, _HAND_Y, z])
            x += lengths[i]
    for i in range(3):
        j[f"left_thumb{i + 1}"] = np.array(_THUMB[i])
    return j


def _mirror_name(name: str) -> str:
    if name.startswith("left_"):
        return "right_" + name[5:]
    if name.startswith("right_"):
        return "left_" + name[6:]
    return name


def rest_joints() -> np.ndarray:
    """[55, 3] float64 designed rest joints of the license-free body, SMPL-X order."""
    left = _left_skeleton()
    out = np.zeros((jn.NUM_JOINTS, 3))
    for i, name in enumerate(jn.SKELETON):
        if name in left:
            out[i] = left[name]
        else:
            out[i] = left[_mirror_name(name)] * [-1, 1, 1]
    return out


# ---------------------------------------------------------------------------------------------------------
# Tubes.


@dataclasses.dataclass
class _Tube:
    """A closed tube along a polyline of stations (centre, half-width along u, half-width along w)."""

    name: str
    centers: list  # [S] points
    radii: list  # [S] (a, b)
    owners: list  # [S] joint name owning the stretch that starts at each station (None: unchanged)
    ref: tuple  # reference direction for the ring's u axis
    spacing: float  # ring spacing, metres
    around: int  # vertices per ring
    start_joint: str | None = None  # blended in at the start (the parent side)
    end_joint: str | None = None  # blended in at the end (the child side)
    blend: float = 0.03  # half-width of the owner blend along the tube, metres
    cap: tuple = (1.0, 1.0)  # cap length at (start, end) as a fraction of the end's smaller radius


@dataclasses.dataclass
class _Part:
    verts: np.ndarray  # [n, 3]
    faces: np.ndarray  # [m, 3]
    centers: np.ndarray  # [n, 3] axis point of each vertex's ring
    weights: dict  # joint name -> [n] skinning weight
    name: str


def _unit(v):
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _build_tube(t: _Tube) -> _Part:
    P = np.asarray(t.centers, float)
    R = np.asarray(t.radii, float)
    seg = np.linalg.norm(np.diff(P, axis=0), axis=1)
    knots = np.concatenate([[0.0], np.cumsum(seg)])
    L = knots[-1]
    n = max(2, int(np.ceil(L / t.spacing)) + 1)
    s = np.linspace(0.0, L, n)
    c = np.stack([np.interp(s, knots, P[:, k]) for k in range(3)], axis=1)
    ab = np.stack([np.interp(s, knots, R[:, k]) for k in range(2)], axis=1)
    tan = np.gradient(c, axis=0)
    tan = _unit(tan)
    for _ in range(3):  # soften the frame at polyline corners
        tan[1:-1] = _unit(tan[:-2] + 2 * tan[1:-1] + tan[2:])
    ref = np.asarray(t.ref, float)
    u = _unit(ref - (tan @ ref)[:, None] * tan)
    w = np.cross(tan, u)
    phi = 2 * np.pi * np.arange(t.around) / t.around
    cos, sin = np.cos(phi), np.sin(phi)

    ncap = 4
    for end in (0, 1):
        i = 0 if end == 0 else n - 1
        sign = -1.0 if end == 0 else 1.0
        cap_len = t.cap[end] * min(ab[i])
        # Cap rings from the pole side towards the body (start) or from the body outwards (end).
        order = range(ncap - 1, 0, -1) if end == 0 else range(1, ncap)
        cap = []
        for k in order:
            psi = 0.5 * np.pi * k / ncap
            cap.append((c[i] + sign * cap_len * np.sin(psi) * tan[i], ab[i] * np.cos(psi), s[i], c[i]))
        if end == 0:
            head_rings = cap
        else:
            tail_rings = cap
    all_rings = head_rings + [(c[i], ab[i], s[i], c[i]) for i in range(n)] + tail_rings
    frames_u = [u[0]] * len(head_rings) + list(u) + [u[-1]] * len(tail_rings)
    frames_w = [w[0]] * len(head_rings) + list(w) + [w[-1]] * len(tail_rings)
    verts, vs, vc = [], [], []
    for (cc, r, ss, axis_pt), uu, ww in zip(all_rings, frames_u, frames_w):
        verts.append(cc + r[0] * cos[:, None] * uu + r[1] * sin[:, None] * ww)
        vs.append(np.full(t.around, ss))
        vc.append(np.repeat(axis_pt[None], t.around, 0))
    m = t.around
    nr = len(all_rings)
    pole0 = c[0] - t.cap[0] * min(ab[0]) * tan[0]
    pole1 = c[-1] + t.cap[1] * min(ab[-1]) * tan[-1]
    verts = np.concatenate(verts + [pole0[None], pole1[None]])
    vs = np.concatenate(vs + [[0.0, L]])
    vc = np.concatenate(vc + [c[:1], c[-1:]])
    faces = []
    k = np.arange(m)
    for r in range(nr - 1):
        a0, a1 = r * m + k, r * m + (k + 1) % m
        b0, b1 = (r + 1) * m + k, (r + 1) * m + (k + 1) % m
        faces += [np.stack([a0, b0, a1], 1), np.stack([a1, b0, b1], 1)]
    p0, p1 = nr * m, nr * m + 1
    faces.append(np.stack([np.full(m, p0), k, (k + 1) % m], 1))
    last = (nr - 1) * m
    faces.append(np.stack([np.full(m, p1), last + (k + 1) % m, last + k], 1))
    faces = np.concatenate(faces)
    if _signed_volume(verts, faces) < 0:
        faces = faces[:, ::-1]

    # Owner label along the tube, averaged with a Hann window of half-width `blend`.
    owner_at_knot = []
    cur = None
    for o in t.owners:
        cur = o if o is not None else cur
        owner_at_knot.append(cur)
    first = t.start_joint or owner_at_knot[0]
    last_owner = t.end_joint or owner_at_knot[-1]
    names = sorted(set(owner_at_knot) | {first, last_owner})
    offs = np.linspace(-1.0, 1.0, 41)
    hann = np.cos(0.5 * np.pi * offs) ** 2
    sq = vs[:, None] + t.blend * offs[None]
    seg_idx = np.clip(np.searchsorted(knots, sq, side="right") - 1, 0, len(knots) - 2)
    labels = np.array(owner_at_knot, dtype=object)[seg_idx]
    labels[sq < 0] = first
    labels[sq > L] = last_owner
    weights = {}
    for nm in names:
        wgt = ((labels == nm) * hann).sum(1) / hann.sum()
        if wgt.max() > 0:
            weights[nm] = wgt
    return _Part(verts, faces, vc, weights, t.name)


def _signed_volume(v, f):
    a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    return np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6.0


def _left_tubes(J: dict) -> list[_Tube]:
    x_ax, z_ax = (1.0, 0.0, 0.0), (0.0, 0.0, 1.0)
    tubes = [
        _Tube("left_leg",
              [(0.085, -0.36, 0.0), (0.09, -0.43, 0.005), (0.098, -0.56, 0.01), J["left_knee"],
               (0.095, -0.95, -0.015), (0.088, -1.12, -0.035), J["left_ankle"]],
              [(0.085, 0.085), (0.085, 0.09), (0.075, 0.08), (0.05, 0.055), (0.052, 0.058), (0.036, 0.04),
               (0.033, 0.037)],
              ["left_hip", None, None, "left_knee", None, None, "left_ankle"],
              x_ax, 0.022, 28, start_joint="pelvis", end_joint="left_ankle", cap=(0.6, 1.0)),
        _Tube("left_foot",
              [(0.085, -1.237, -0.10), (0.085, -1.235, -0.04), (0.095, -1.25, 0.04), J["left_foot"],
               (0.105, -1.262, 0.165)],
              [(0.03, 0.04), (0.038, 0.045), (0.045, 0.03), (0.046, 0.024), (0.04, 0.016)],
              ["left_ankle", None, None, "left_foot", None],
              x_ax, 0.016, 20, start_joint="left_ankle", end_joint="left_foot", blend=0.02),
        _Tube("left_arm",
              [J["left_collar"], J["left_shoulder"], (0.26, 0.13, -0.018), J["left_elbow"], (0.52, 0.13, -0.02),
               J["left_wrist"]],
              [(0.05, 0.05), (0.052, 0.055), (0.045, 0.045), (0.035, 0.034), (0.036, 0.031), (0.028, 0.02)],
              ["left_collar", "left_shoulder", None, "left_elbow", None, "left_wrist"],
              z_ax, 0.02, 24, start_joint="spine3", end_joint="left_wrist"),
        _Tube("left_palm",
              [(0.67, 0.13, -0.014), (0.72, 0.129, -0.004), (_KNUCKLE_X + 0.005, _HAND_Y, -0.004)],
              [(0.03, 0.019), (0.046, 0.016), (0.046, 0.013)],
              ["left_wrist", None, None],
              z_ax, 0.014, 20, start_joint="left_elbow", blend=0.015, cap=(0.8, 0.6)),
    ]  # fmt: skip
    for name, (_, lengths, thick) in _FINGERS.items():
        pts = [J[f"left_{name}1"] - [0.012, 0, 0]] + [J[f"left_{name}{i}"] for i in (1, 2, 3)]
        pts.append(J[f"left_{name}3"] + [lengths[3], 0, 0])
        rad = [(thick, thick * 0.9)] * 3 + [(thick * 0.92, thick * 0.8), (thick * 0.8, thick * 0.7)]
        owners = [f"left_{name}1", None, f"left_{name}2", f"left_{name}3", None]
        tubes.append(_Tube(f"left_{name}", pts, rad, owners, z_ax, 0.01, 8, start_joint="left_wrist",
                           blend=0.008))
    thumb = [np.array(_THUMB[0]) - [0.02, 0, 0.01]] + [np.array(p) for p in _THUMB]
    tubes.append(_Tube("left_thumb", thumb, [(0.012, 0.011), (0.011, 0.01), (0.0095, 0.0085), (0.009, 0.008),
                                              (0.008, 0.007)],
                       ["left_wrist", "left_thumb1", "left_thumb2", "left_thumb3", None], (0.0, 1.0, 0.0),
                       0.01, 8, start_joint="left_wrist", blend=0.008))
    tubes.append(_Tube("left_eye", [J["left_eye_smplhf"] - [0, 0, 0.012], J["left_eye_smplhf"] + [0, 0, 0.012]],
                       [(0.013, 0.013)] * 2, ["left_eye_smplhf", None], x_ax, 0.008, 12, cap=(0.9, 0.9)))
    tubes.append(_Tube("left_ear", [(0.078, 0.33, -0.01), (0.094, 0.33, -0.012)], [(0.03, 0.012)] * 2,
                       ["head", None], (0.0, 1.0, 0.0), 0.008, 10, cap=(0.4, 0.4)))
    return tubes


def _mirror_tube(t: _Tube) -> _Tube:
    flip = np.array([-1.0, 1.0, 1.0])
    return dataclasses.replace(
        t, name=_mirror_name(t.name), centers=[np.asarray(c) * flip for c in t.centers],
        owners=[_mirror_name(o) if o else None for o in t.owners],
        start_joint=_mirror_name(t.start_joint) if t.start_joint else None,
        end_joint=_mirror_name(t.end_joint) if t.end_joint else None)  # fmt: skip


def _midline_tubes(J: dict) -> list[_Tube]:
    y_ax_ref = (1.0, 0.0, 0.0)
    return [
        _Tube("torso",
              [(0.0, -0.47, 0.0), (0.0, -0.42, 0.0), J["pelvis"], (0.0, -0.25, 0.0), (0.0, -0.12, 0.0),
               (0.0, -0.06, 0.005), (0.0, 0.03, 0.01), (0.0, 0.1, 0.0), (0.0, 0.14, -0.01), (0.0, 0.16, -0.01)],
              [(0.12, 0.09), (0.17, 0.11), (0.165, 0.11), (0.14, 0.1), (0.145, 0.1), (0.155, 0.11), (0.165, 0.115),
               (0.175, 0.1), (0.13, 0.075), (0.065, 0.06)],
              ["pelvis", None, None, "spine1", "spine2", "spine3", None, None, None, None],
              y_ax_ref, 0.018, 44, end_joint="neck", cap=(0.5, 0.3)),
        _Tube("head",
              [(0.0, 0.15, -0.01), (0.0, 0.22, -0.005), J["head"], (0.0, 0.3, 0.012), (0.0, 0.36, 0.012),
               (0.0, 0.41, 0.005)],
              [(0.058, 0.058), (0.055, 0.058), (0.068, 0.078), (0.08, 0.1), (0.083, 0.1), (0.07, 0.085)],
              ["neck", None, "head", None, None, None],
              y_ax_ref, 0.011, 36, start_joint="spine3", cap=(0.3, 0.45)),
        _Tube("nose", [(0.0, 0.315, 0.095), (0.0, 0.297, 0.128)], [(0.011, 0.014), (0.012, 0.009)],
              ["head", None], (1.0, 0.0, 0.0), 0.007, 10, cap=(0.3, 0.7)),
    ]  # fmt: skip


def _assemble() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Mesh, skinning weights [V, 55], ring axis points, and per-vertex part names of the unordered mesh."""
    J = {name: p for name, p in zip(jn.SKELETON, rest_joints())}
    tubes = _midline_tubes(J) + _left_tubes(J)
    tubes += [_mirror_tube(t) for t in _left_tubes(J)]
    parts = [_build_tube(t) for t in tubes]
    verts, faces, centers, weights, part_of = [], [], [], [], []
    offset = 0
    index = {n: i for i, n in enumerate(jn.SKELETON)}
    for p in parts:
        verts.append(p.verts)
        faces.append(p.faces + offset)
        centers.append(p.centers)
        w = np.zeros((len(p.verts), jn.NUM_JOINTS))
        for name, col in p.weights.items():
            w[:, index[name]] = col
        if p.name == "head":  # the chin and lower face (on the neck-to-head stretch) follow the jaw
            y, z = p.verts[:, 1], p.verts[:, 2]
            jaw = np.clip((0.262 - y) / 0.015, 0, 1) * np.clip((y - 0.215) / 0.015, 0, 1) * np.clip(z / 0.03, 0, 1)
            w[:, index["jaw"]] = 0.9 * jaw * (w[:, index["head"]] + w[:, index["neck"]])
            w[:, [index["head"], index["neck"]]] *= (1 - 0.9 * jaw)[:, None]
        weights.append(w)
        part_of += [p.name] * len(p.verts)
        offset += len(p.verts)
    return (np.concatenate(verts), np.concatenate(faces), np.concatenate(weights), np.concatenate(centers),
            np.array(part_of))


# ---------------------------------------------------------------------------------------------------------
# Ordering, landmarks, regressors, blend shapes.

# Where smplx's fixed-id keypoints sit on this body (left side; right mirrors).
_KEYPOINT_TARGETS = {
    "nose": (0.0, 0.296, 0.14), "left_eye": (0.032, 0.325, 0.098), "left_ear": (0.095, 0.33, -0.012),
    "left_big_toe": (0.085, -1.265, 0.175), "left_small_toe": (0.135, -1.265, 0.15),
    "left_heel": (0.085, -1.265, -0.12),
}  # fmt: skip


def _keypoint_target(name: str, skeleton: dict) -> np.ndarray:
    if name in _KEYPOINT_TARGETS:
        return np.array(_KEYPOINT_TARGETS[name])
    if _mirror_name(name) in _KEYPOINT_TARGETS:
        return np.array(_KEYPOINT_TARGETS[_mirror_name(name)]) * [-1, 1, 1]
    side, finger = name.split("_")  # finger tips: beyond the third joint
    sgn = 1.0 if side == "left" else -1.0
    if finger == "thumb":
        return np.array(_THUMB[3]) * [sgn, 1, 1] + [sgn * 0.012, 0, 0.004]
    _, lengths, _ = _FINGERS[finger]
    return skeleton[f"{side}_{finger}3"] + [sgn * (lengths[3] + 0.01), 0, 0]


def _order_vertices(v, f, extra):
    """Permutation putting the vertex nearest each keypoint target at smplx's fixed vertex id."""
    n = len(v)
    chosen = {}
    taken = set()
    for vid, target in extra:
        d = np.linalg.norm(v - target, axis=1)
        for cand in np.argsort(d):
            if cand not in taken:
                break
        chosen[vid] = cand
        taken.add(cand)
    rest = iter([i for i in range(n) if i not in taken])
    order = np.array([chosen[i] if i in chosen else next(rest) for i in range(n)])
    inv = np.empty(n, int)
    inv[order] = np.arange(n)
    return order, inv[f]


def _raycast_front(v, f, xy):
    """For each (x, y), the front-most face hit by a ray along -z, and its barycentric coordinates."""
    a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    normal_z = np.cross(b - a, c - a)[:, 2]
    fids, bary = [], []
    for x, y in xy:
        d = np.array([x, y])
        v0, v1, v2 = b[:, :2] - a[:, :2], c[:, :2] - a[:, :2], d - a[:, :2]
        den = v0[:, 0] * v1[:, 1] - v1[:, 0] * v0[:, 1]
        ok = np.abs(den) > 1e-14
        den = np.where(ok, den, 1.0)
        l1 = (v2[:, 0] * v1[:, 1] - v1[:, 0] * v2[:, 1]) / den
        l2 = (v0[:, 0] * v2[:, 1] - v2[:, 0] * v0[:, 1]) / den
        l0 = 1 - l1 - l2
        inside = ok & (l0 >= 0) & (l1 >= 0) & (l2 >= 0) & (normal_z > 0)
        z = np.where(inside, l0 * a[:, 2] + l1 * b[:, 2] + l2 * c[:, 2], -np.inf)
        k = int(np.argmax(z))
        if not np.isfinite(z[k]):
            raise AssertionError(f"face landmark ({x}, {y}) misses the head")
        fids.append(k)
        bary.append((l0[k], l1[k], l2[k]))
    return np.array(fids), np.array(bary)


def _face_landmark_xy() -> np.ndarray:
    """[51, 2] (x, y) of the static landmarks in `joint_names.FACE_LANDMARKS` order."""
    brow_r = [(-0.058, 0.343), (-0.048, 0.349), (-0.037, 0.351), (-0.026, 0.349), (-0.014, 0.345)]
    brows = brow_r + [(-x, y) for x, y in reversed(brow_r)]
    nose = [(0.0, 0.334), (0.0, 0.322), (0.0, 0.31), (0.0, 0.3)]
    nose += [(-0.016, 0.292), (-0.008, 0.29), (0.0, 0.289), (0.008, 0.29), (0.016, 0.292)]
    ex, ey = -0.032, 0.325
    eye_r = [(ex - 0.014, ey), (ex - 0.006, ey + 0.005), (ex + 0.006, ey + 0.005), (ex + 0.014, ey),
             (ex + 0.006, ey - 0.004), (ex - 0.006, ey - 0.004)]  # fmt: skip
    eye_l = [(-x, y) for x, y in eye_r]
    eyes = eye_r + [eye_l[i] for i in (3, 2, 1, 0, 5, 4)]
    mouth = [(-0.026, 0.266), (-0.016, 0.272), (-0.006, 0.275), (0.0, 0.274), (0.006, 0.275), (0.016, 0.272),
             (0.026, 0.266), (0.016, 0.257), (0.006, 0.254), (0.0, 0.254), (-0.006, 0.254), (-0.016, 0.257)]
    lips = [(-0.02, 0.266), (-0.008, 0.268), (0.0, 0.268), (0.008, 0.268), (0.02, 0.266), (0.008, 0.262),
            (0.0, 0.262), (-0.008, 0.262)]  # fmt: skip
    out = np.array(brows + nose + eyes + mouth + lips)
    assert out.shape == (51, 2)
    return out


def _contour_points() -> np.ndarray:
    """[17, 3] jaw line from the right ear to the left, through the chin."""
    ang = np.linspace(-0.5 * np.pi, 0.5 * np.pi, 17)
    return np.stack([0.078 * np.sin(ang), 0.235 + 0.06 * np.abs(np.sin(ang)) ** 1.5, 0.08 * np.cos(ang)], 1)


def _affine_regressor(v, targets, regions, k=256):
    """[J, V] rows summing to 1 with rows @ v == targets exactly: Gaussian-weighted nearest region vertices,
    then the minimum-norm correction that meets the four affine constraints."""
    reg = np.zeros((len(targets), len(v)))
    for j, (p, region) in enumerate(zip(targets, regions)):
        idx = np.flatnonzero(region)
        d = np.linalg.norm(v[idx] - p, axis=1)
        near = idx[np.argsort(d)[:k]]
        dn = np.linalg.norm(v[near] - p, axis=1)
        w0 = np.exp(-((dn / (dn.max() + 1e-9)) ** 2))
        w0 /= w0.sum()
        A = np.concatenate([v[near].T, np.ones((1, len(near)))])  # [4, k]
        rhs = np.concatenate([p, [1.0]]) - A @ w0
        w = w0 + A.T @ np.linalg.solve(A @ A.T, rhs)
        reg[j, near] = w
    return reg


def _bump(v, center, sigma):
    return np.exp(-np.sum((v - np.asarray(center)) ** 2, axis=1) / (2 * sigma**2))


def _shape_dirs(v, centers, part) -> np.ndarray:
    """[V, 3, 10] shape blend shapes (see module docstring)."""
    x, y, z = v.T
    radial = v - centers
    arms = np.isin(part, [f"{s}_{p}" for s in ("left", "right") for p in
                          ("arm", "palm", "thumb") + tuple(_FINGERS)])  # fmt: skip
    head = np.isin(part, ["head", "nose", "left_eye", "right_eye", "left_ear", "right_ear"])
    torso = part == "torso"
    legs = np.isin(part, ["left_leg", "right_leg", "left_foot", "right_foot"])
    d = np.zeros((len(v), 3, NUM_SHAPE))
    d[:, :, 0] = 0.035 * (v - [0.0, SOLE_Y, 0.0])
    d[:, :, 1] = 0.12 * radial * ~head[:, None]
    d[:, 1, 2] = -0.05 * np.clip((-0.38 - y) / 0.84, 0, 1)
    upper = np.clip((np.abs(x) - 0.09) / 0.09, 0, 1) * (y > 0.0) * torso
    d[:, 0, 3] = 0.02 * np.sign(x) * np.where(arms, 1.0, upper)
    d[:, 2, 4] = 0.05 * np.clip(z / 0.1, 0, 1) * _bump(v * [0, 1, 0], (0, -0.2, 0), 0.1) * torso
    d[:, 0, 5] = 0.04 * np.sign(x) * np.clip((np.abs(x) - 0.175) / 0.5, 0, 1) * arms
    d[:, :, 6] = 0.1 * (v - [0.0, 0.33, 0.0]) * head[:, None]
    d[:, 0, 7] = 0.02 * (x / 0.17) * _bump(v * [0, 1, 0], (0, -0.42, 0), 0.1) * (torso | legs)
    d[:, 2, 8] = 0.03 * (z / 0.11) * _bump(v * [0, 1, 0], (0, 0.03, 0), 0.08) * torso
    d[:, 1, 9] = 0.02 * np.clip((y - 0.15) / 0.06, 0, 1) * (head | torso)
    return d


def _expression_dirs(v, part) -> np.ndarray:
    """[V, 3, 10] expression blend shapes on the face front."""
    face = (part == "head") & (v[:, 2] > 0.02)
    e = np.zeros((len(v), 3, NUM_EXPRESSION))
    y = v[:, 1]
    e[:, 1, 0] = -0.012 * np.clip((0.262 - y) / 0.015, 0, 1) * np.clip((y - 0.2) / 0.02, 0, 1)
    for sgn in (-1, 1):
        corner = (sgn * 0.026, 0.266, 0.09)
        e[:, :, 1] += _bump(v, corner, 0.01)[:, None] * [sgn * 0.004, 0.004, -0.002]
        e[:, :, 4] += _bump(v, (sgn * 0.045, 0.285, 0.08), 0.015)[:, None] * [sgn * 0.005, 0, 0.004]
        e[:, 1, 5] += -0.004 * _bump(v, corner, 0.01)
        e[:, 1, 6] += 0.003 * np.sign(0.325 - y) * _bump(v, (sgn * 0.032, 0.325, 0.09), 0.01)
        e[:, :, 9] += (sgn > 0) * _bump(v, corner, 0.01)[:, None] * [0.005, 0.005, -0.002]
    e[:, 1, 2] = 0.005 * _bump(v, (0, 0.348, 0.09), 0.025)
    e[:, 2, 3] = 0.007 * _bump(v, (0, 0.264, 0.1), 0.012)
    e[:, 1, 7] = 0.003 * _bump(v, (0, 0.31, 0.11), 0.01)
    e[:, 0, 8] = -0.004 * np.sign(v[:, 0]) * _bump(v, (0, 0.264, 0.1), 0.015)
    return e * face[:, None, None]


def _pose_dirs(v, weights, joints, centers) -> np.ndarray:
    """[V, 3, 486] analytic pose correctives (see module docstring)."""
    V = len(v)
    radial = v - centers
    n = radial / np.maximum(np.linalg.norm(radial, axis=1, keepdims=True), 1e-6)
    out = np.zeros((V, 3, 9 * (jn.NUM_JOINTS - 1)))
    for k in range(1, jn.NUM_JOINTS):
        g = 4.0 * weights[:, k] * weights[:, jn.PARENTS[k]]
        if not g.any():
            continue
        col = 9 * (k - 1)
        for i in (0, 4, 8):  # sum of diag(R - I) = 2 (cos angle - 1)
            out[:, :, col + i] = -0.005 * g[:, None] * n
        r = (v - joints[k]) * (0.1 * g)[:, None]
        # omega = ((R21 - R12), (R02 - R20), (R10 - R01)) / 2;  offset = omega x r
        ox = {col + 7: 0.5, col + 5: -0.5}
        oy = {col + 2: 0.5, col + 6: -0.5}
        oz = {col + 3: 0.5, col + 1: -0.5}
        for idx, c in ox.items():  # omega_x e_x x r = omega_x (0, -r_z, r_y)
            out[:, 1, idx] += -c * r[:, 2]
            out[:, 2, idx] += c * r[:, 1]
        for idx, c in oy.items():  # (r_z, 0, -r_x)
            out[:, 0, idx] += c * r[:, 2]
            out[:, 2, idx] += -c * r[:, 0]
        for idx, c in oz.items():  # (-r_y, r_x, 0)
            out[:, 0, idx] += -c * r[:, 1]
            out[:, 1, idx] += c * r[:, 0]
    return out


def _hand_pca() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(components_l [45, 45], components_r, mean_l [45], mean_r): orthonormal rows, right = mirror of left."""
    curl_axis, thumb_axis = np.array([0.0, 0.0, -1.0]), _unit(np.array([0.0, 0.3, -1.0]))
    basis = np.zeros((4, 15, 3))
    for f in range(4):  # index, middle, pinky, ring
        for i in range(3):
            basis[0, 3 * f + i] = curl_axis
            basis[2, 3 * f] = [0.0, (f - 1.5) * 0.5, 0.0] if i == 0 else basis[2, 3 * f]
            basis[3, 3 * f + i] = curl_axis * (1.0 if f == 0 else -1.0 if f == 2 else 0.0)
    basis[1, 12:15] = thumb_axis
    rng = np.random.default_rng(20191015)
    m = np.concatenate([basis.reshape(4, 45), rng.standard_normal((41, 45))])
    q, r = np.linalg.qr(m.T)
    comps_l = (q * np.sign(np.diag(r))).T
    mean_l = np.concatenate([np.tile(0.15 * curl_axis, 12), 0.1 * thumb_axis, 0.1 * thumb_axis, 0.1 * thumb_axis])
    mirror = np.tile([1.0, -1.0, -1.0], 15)
    return comps_l, comps_l * mirror, mean_l, mean_l * mirror


def license_free_smplx_arrays() -> dict[str, np.ndarray]:
    """The arrays of the license-free SMPL-X-format body, keyed as an official SMPL-X .npz file.

    Returns (V vertices, 9929 < V, F faces):
      v_template [V, 3] float32 metres (every float array is float32); f [F, 3] uint32; weights [V, 55]; J_regressor [55, V];
      kintree_table [2, 55] int64 (root parent 4294967295, as in official files);
      shapedirs [V, 3, 20] (10 shape, then 10 expression); posedirs [V, 3, 486];
      hands_componentsl/r [45, 45], hands_meanl/r [45];
      lmk_faces_idx [51] int64, lmk_bary_coords [51, 3];
      dynamic_lmk_faces_idx [79, 17] int64, dynamic_lmk_bary_coords [79, 17, 3].
    Deterministic: the same arrays on every call.
    """
    v, f, w, centers, part = _assemble()
    joints = rest_joints()
    skeleton = dict(zip(jn.SKELETON, joints))
    if len(v) <= max(jn.EXTRA_VERTEX_IDS):
        raise AssertionError(f"{len(v)} vertices; smplx reads keypoints at vertex ids up to {max(jn.EXTRA_VERTEX_IDS)}")
    extra = [(vid, _keypoint_target(name, skeleton)) for name, vid in zip(jn.EXTRA_VERTEX_JOINTS,
                                                                            jn.EXTRA_VERTEX_IDS)]
    order, f = _order_vertices(v, f, extra)
    v, w, centers, part = v[order], w[order], centers[order], part[order]
    w = w / w.sum(1, keepdims=True)

    regions = []
    for j in range(jn.NUM_JOINTS):
        regions.append((w[:, j] > 0.2) | ((w[:, jn.PARENTS[j]] > 0.2) if j else False))
    J_regressor = _affine_regressor(v, joints, regions)

    head_faces = np.flatnonzero(np.all(np.isin(part[f], ["head", "nose", "left_eye", "right_eye"]), axis=1))
    fid, bary = _raycast_front(v, f[head_faces], _face_landmark_xy())
    lmk_faces_idx = head_faces[fid]
    contour_v = [int(np.argmin(np.linalg.norm(v - p, axis=1) + 1e3 * (part != "head"))) for p in _contour_points()]
    contour_f = [int(np.flatnonzero((f == cv).any(1))[0]) for cv in contour_v]
    contour_b = np.array([(f[cf] == cv).astype(float) for cf, cv in zip(contour_f, contour_v)])
    comps_l, comps_r, mean_l, mean_r = _hand_pca()
    kintree = np.stack([np.array(jn.PARENTS), np.arange(jn.NUM_JOINTS)]).astype(np.int64)
    kintree[0, 0] = 4294967295
    f32 = np.float32  # smplx computes in float32; float64 would double the 65 MB of posedirs for nothing
    return {
        "v_template": v.astype(f32),
        "f": f.astype(np.uint32),
        "weights": w.astype(f32),
        "J_regressor": J_regressor.astype(f32),
        "kintree_table": kintree,
        "shapedirs": np.concatenate([_shape_dirs(v, centers, part), _expression_dirs(v, part)], axis=2).astype(f32),
        "posedirs": _pose_dirs(v, w, joints, centers).astype(f32),
        "hands_componentsl": comps_l.astype(f32),
        "hands_componentsr": comps_r.astype(f32),
        "hands_meanl": mean_l.astype(f32),
        "hands_meanr": mean_r.astype(f32),
        "lmk_faces_idx": lmk_faces_idx.astype(np.int64),
        "lmk_bary_coords": bary.astype(f32),
        "dynamic_lmk_faces_idx": np.tile(np.array(contour_f, np.int64), (jn.NUM_CONTOUR_YAWS, 1)),
        "dynamic_lmk_bary_coords": np.tile(contour_b, (jn.NUM_CONTOUR_YAWS, 1, 1)).astype(f32),
    }
