"""Contact keypoints (Fig. 3c): 2D hand keypoints lifted to 3D with the depth of the Stage I object render.

On a contact frame, a hand keypoint is lifted when (1) its detector confidence is at least `min_conf` and
(2) the object render covers its pixel with alpha at least `min_alpha` (the point lies over the object, so the
object's depth there is the depth of the touched surface; Stage II renders the moving parts alone for this, since
behind a hand the static body often shows). Its 3D position K_j(t) is the back-projection of the
keypoint at the render's surface depth (expected depth / alpha), moved back towards the camera by
`offset_m` (Stage2Config.contact_offset_m: a hand joint is inside the hand, not on the surface it touches).
On the fridge the open door's face lies up to 55 cm behind the fingers that grip its edge, so (3) per hand and
frame only keypoints within `depth_band_m` of the hand's nearest lifted keypoint are kept, and (4) each keypoint
takes the nearest surface within `window_px` of its pixel (the edge the fingers grip is the nearest surface near
them; the door face seen between them is farther): fridge_hoi, lifted vs ground-truth hand joints (median / max),
8.5 / 27.3 cm at one pixel -> 4.7 / 13.9 cm at 4 px (door 3.5 -> 2.7, drawer 3.6 -> 3.5, lid 3.4 -> 3.0 cm).
The wrist (keypoint 0) is never lifted: it does not touch the object, it lies a hand's length in front of it
(on door_hoi its lifted depth was 15 cm behind the true wrist, against 1-6 cm for the finger joints). Other
keypoints get weight 0.

Beyond the paper, two things put the lifted points off the true joints of a hand that grips a bar (HOI suite,
session 5; the door's lifted ring and pinky joints 5-14 cm in front of the true ones). (a) Stage I's render
moves the Gaussians within the binding radius of another part by a blend of the parts' poses (Eq. 4), so near
a door's free edge, where its handle is, they float 5-15 cm off the door once it turns; `rigid_parts` moves each
Gaussian by its own part's pose for the lifting (Stage2Config.contact_rigid_parts).
(b) The joints of a grip are not equally far from the surface they touch: the knuckles sit a palm's thickness in
front of the bar, the finger tips curl behind it. `grip_offsets` gives each keypoint its own offset
(Stage2Config.contact_finger_offsets_m / contact_thumb_offsets_m, per finger segment).

Contact frames come from the bundle when known; otherwise a hand is in contact when one of its confident
keypoints lies within `radius_px` of the moving part's mask (2D proximity).

Beyond the paper (Stage2Config.contact_anchor): a grasp is rigid with the part it holds, so `anchor_keypoints`
maps each hand's lifted keypoints into the held part's frame 0 with Stage I's poses, drops per keypoint the
frames farther than ANCHOR_REJECT_M from its median there, and puts the inliers' mean back with the part's pose
on every frame of the grasp (a run of contact frames), also where the keypoint was not lifted (the fridge door
turns edge-on and the late frames lift 1-3 keypoints, ~6 cm off), there weighted by its support. The held part
is the moving part nearest the hand's lifted keypoints (`held_part`).

Beyond the paper (Stage2Config.contact_depth_shift): the object render says where the touched surface is, not
where the hand is; where the hand hides its handle the surface lifted onto is the face behind it, and the grip
offsets are medians over four grips (drawer_hoi's anchored keypoints 3.5 cm off, 3.8 cm towards the camera). The
frame-0 depth map sees the hand itself (`depth_keypoints`, the joint SKIN_M under the skin), and `depth_shift`
moves the grasp that holds at frame 0 by the hand's median offset to it (grip keypoint vs ground truth, median cm,
door / drawer / fridge / lid: 1.79 / 3.28 / 0.65 / 0.60 -> 0.91 / 0.87 / 0.97 / 0.40 on the session-6 bases).
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from scipy.spatial import cKDTree

from arthoi_jax.errors import InputError

WRIST = 0  # keypoint index in the 21-point hand order
# Grasp anchoring (anchor_keypoints): a lifted keypoint farther than this from its median position in the held
# part's frame is an outlier; a keypoint needs this many inlier frames to be anchored.
ANCHOR_REJECT_M = 0.03
ANCHOR_MIN_FRAMES = 3
# Depth shift (depth_shift): a hand joint lies this far under the skin the depth map sees; a hand needs this many
# keypoints lifted both ways at frame 0.
SKIN_M = 0.01
DEPTH_MIN_KEYPOINTS = 3


def grip_offsets(offset_m: float, finger_m: tuple[float, ...] | None = None,
                 thumb_m: tuple[float, ...] | None = None) -> np.ndarray:
    """[21] metres: each hand keypoint's distance in front of the surface it is lifted onto (towards the camera;
    negative: behind it). offset_m for every keypoint, except that finger_m (the index, middle, ring and pinky
    fingers) and thumb_m (the thumb), each 4 values in the keypoints' order along the finger (knuckle, middle
    joint, end joint, tip), replace it when given."""
    out = np.full(21, offset_m, np.float32)
    for vals, fingers in ((thumb_m, range(1)), (finger_m, range(1, 5))):
        if vals is None:
            continue
        if len(vals) != 4:
            raise InputError(f"grip offsets: expected 4 values (knuckle, middle, end joint, tip), got {list(vals)}")
        for f in fingers:
            out[1 + 4 * f: 5 + 4 * f] = vals
    return out


def rigid_parts(weights: np.ndarray) -> np.ndarray:
    """[G, P + 1] one-hot blend weights: each Gaussian follows its dominant part alone (Eq. 4 without blending).
    weights [G, P + 1] (Stage1Scene.weights)."""
    w = np.asarray(weights)
    return np.eye(w.shape[1], dtype=np.float32)[np.argmax(w, axis=1)]


def _check(hand_keypoints: np.ndarray, conf: np.ndarray, T: int) -> None:
    if hand_keypoints.shape != (T, 2, 21, 2):
        raise InputError(f"hand_keypoints: expected shape [T={T}, 2, 21, 2], got {list(hand_keypoints.shape)}")
    if conf.shape != (T, 2, 21):
        raise InputError(f"hand_keypoint_conf: expected shape [T={T}, 2, 21], got {list(conf.shape)}")


def detect_contact_frames(hand_keypoints: np.ndarray, conf: np.ndarray, part_masks: np.ndarray, min_conf: float,
                          radius_px: float) -> np.ndarray:
    """[T, 2] bool (left, right hand): a confident keypoint within `radius_px` of the moving-part mask.

    hand_keypoints [T, 2, 21, 2] pixels (x, y), conf [T, 2, 21]; part_masks [T, H, W] bool (any moving part).
    """
    T, H, W = part_masks.shape
    _check(hand_keypoints, conf, T)
    out = np.zeros((T, 2), bool)
    for t in range(T):
        if not part_masks[t].any():
            continue  # an empty mask (part hidden) is no evidence of contact
        dist = cv2.distanceTransform((~part_masks[t]).astype(np.uint8), cv2.DIST_L2, 5)
        col = np.clip(hand_keypoints[t, ..., 0].astype(int), 0, W - 1)
        row = np.clip(hand_keypoints[t, ..., 1].astype(int), 0, H - 1)
        near = (dist[row, col] <= radius_px) & (conf[t] >= min_conf)
        out[t] = near.any(axis=1)
    return out


def lift_keypoints(hand_keypoints: np.ndarray, conf: np.ndarray, contact: np.ndarray, depth: np.ndarray,
                   alpha: np.ndarray, K: np.ndarray, image_hw: tuple[int, int], min_conf: float, min_alpha: float,
                   offset_m: float | np.ndarray = 0.0, depth_band_m: float = np.inf, window_px: float = 0.0):
    """3D contact keypoints.

    hand_keypoints [T, 2, 21, 2] full-resolution pixels; conf [T, 2, 21]; contact [T, 2] bool; depth, alpha
    [T, h, w]: the object render's expected depth (alpha-weighted, metres) and alpha at any resolution h x w
    (keypoints are scaled to it); K [3, 3] intrinsics of the full-resolution image of size image_hw (H, W).
    offset_m: the point is moved this far back along the viewing ray, towards the camera (a hand joint lies
    inside the hand, in front of the surface it touches); a scalar, or [21] per keypoint (`grip_offsets`).
    depth_band_m: per hand and frame, a keypoint is kept only when its render depth is within this of the hand's
    nearest lifted keypoint (the touched handle stands out towards the camera; farther ones show the surface
    behind the hand).
    window_px: a keypoint takes the nearest covered surface within this many full-resolution pixels (a square
    window, rounded to render pixels; 0: its own pixel only).
    Returns points [T, 2, 21, 3] metres (camera-0 = world frame; 0 where not lifted) and weights [T, 2, 21]
    float32 (1 lifted, else 0).
    """
    T = depth.shape[0]
    _check(hand_keypoints, conf, T)
    if contact.shape != (T, 2):
        raise InputError(f"contact: expected shape [T={T}, 2], got {list(contact.shape)}")
    h, w = depth.shape[1:]
    H, W = image_hw
    col = np.clip((hand_keypoints[..., 0] * w / W).astype(int), 0, w - 1)
    row = np.clip((hand_keypoints[..., 1] * h / H).astype(int), 0, h - 1)
    t = np.arange(T)[:, None, None]
    surf = np.where(alpha >= min_alpha, depth / np.maximum(alpha, 1e-6), np.inf).astype(np.float32)  # [T, h, w]
    r = math.floor(window_px * w / W + 0.5)
    if r > 0:  # nearest covered surface in the window (grey erosion = window minimum)
        kernel = np.ones((2 * r + 1, 2 * r + 1), np.uint8)
        surf = np.stack([cv2.erode(f, kernel, borderType=cv2.BORDER_REPLICATE) for f in surf])
    z = surf[t, row, col]
    ok = contact[..., None] & (conf >= min_conf) & np.isfinite(z) & (z > 0) & (np.arange(21) != WRIST)
    z = np.where(ok, z, 0.0)
    nearest = np.min(np.where(ok, z, np.inf), axis=-1, keepdims=True)  # [T, 2, 1]
    ok &= z <= nearest + depth_band_m
    x = (hand_keypoints[..., 0] - K[0, 2]) / K[0, 0] * z
    y = (hand_keypoints[..., 1] - K[1, 2]) / K[1, 1] * z
    p = np.stack([x, y, z], -1)
    ray = p / np.maximum(np.linalg.norm(p, axis=-1, keepdims=True), 1e-9)
    p -= np.asarray(offset_m, np.float32)[..., None] * ray  # scalar or per keypoint [21]
    pts = np.where(ok[..., None], p, 0.0)
    return pts.astype(np.float32), ok.astype(np.float32)


def held_part(points: np.ndarray, weights: np.ndarray, part_poses: np.ndarray, part_points: list[np.ndarray]
              ) -> np.ndarray:
    """[2] int: per hand, the moving part (index into P) nearest its lifted keypoints (median over its lifted
    keypoints of the distance to the part's nearest point), -1 for a hand with none.

    points [T, 2, 21, 3] world metres, weights [T, 2, 21]; part_poses [T, P, 4, 4] (part p's frame-0 points to
    frame t); part_points: P arrays [N_p, 3] of each part's points at frame 0 (the Stage I Gaussians' means).
    Each keypoint is mapped to frame 0 with the part's pose, where the part's points lie.
    """
    out = np.full(2, -1)
    for s in range(2):
        on = weights[:, s] > 0  # [T, 21]
        if not on.any() or not part_points:
            continue
        t = np.nonzero(on)[0]
        dist = []
        for p, pts in enumerate(part_points):
            inv = np.linalg.inv(part_poses[t, p])  # [n, 4, 4]
            c = np.einsum("nij,nj->ni", inv[:, :3, :3], points[:, s][on]) + inv[:, :3, 3]
            dist.append(np.median(cKDTree(pts).query(c)[0]) if len(pts) else np.inf)
        out[s] = int(np.argmin(dist))
    return out


def grasps(contact: np.ndarray) -> list[np.ndarray]:
    """The runs of consecutive True frames of contact [T] bool, each as a [T] bool mask (one grasp each)."""
    edges = np.diff(np.concatenate([[0], contact.astype(np.int8), [0]]))
    t = np.arange(len(contact))
    return [(t >= a) & (t < b) for a, b in zip(np.nonzero(edges == 1)[0], np.nonzero(edges == -1)[0])]


def anchor_keypoints(points: np.ndarray, weights: np.ndarray, contact: np.ndarray, part_poses: np.ndarray,
                     hand_part: np.ndarray, reject_m: float = ANCHOR_REJECT_M, min_frames: int = ANCHOR_MIN_FRAMES):
    """Contact keypoints held rigid in the held part's frame over each grasp (beyond the paper).

    points [T, 2, 21, 3] world metres and weights [T, 2, 21] (lift_keypoints, in the world frame); contact [T, 2]
    bool; part_poses [T, P, 4, 4] (part p's frame-0 points to frame t); hand_part [2]: the part each hand holds
    (held_part; -1: none, the hand is left as it is). A grasp is a run of consecutive contact frames of a hand
    (a hand that lets go may take the handle elsewhere). Per grasp and keypoint, the lifted positions mapped to
    the part's frame 0 give a median; frames farther than reject_m from it are dropped (a depth from the face
    behind the hand, a wrong edge) and the inliers' mean, moved by the part's pose, becomes the keypoint on every
    frame of the grasp: with weight 1 where it was lifted, elsewhere with its support, the fraction of the grasp's
    frames that lifted it (a keypoint seen on few frames may have moved since: fridge_hoi's hand turns against
    the door, and at weight 1 the filled fingers dragged the body, MPJPE 62.7 -> 82.5 mm; at its support
    58.4 mm). A keypoint with fewer than min_frames inliers in a grasp is not anchored there: its per-frame
    lifting stays.
    Returns points [T, 2, 21, 3] float32 and weights [T, 2, 21] float32.
    """
    T = points.shape[0]
    if contact.shape != (T, 2):
        raise InputError(f"contact: expected shape [T={T}, 2], got {list(contact.shape)}")
    if part_poses.ndim != 4 or part_poses.shape[0] != T or part_poses.shape[2:] != (4, 4):
        raise InputError(f"part_poses: expected shape [T={T}, P, 4, 4], got {list(part_poses.shape)}")
    pts, wts = points.astype(np.float32), weights.astype(np.float32)
    for s in range(2):
        if hand_part[s] < 0:
            continue
        pose = part_poses[:, hand_part[s]]  # [T, 4, 4]
        inv = np.linalg.inv(pose)
        canon = np.einsum("tij,tkj->tki", inv[:, :3, :3], points[:, s]) + inv[:, None, :3, 3]  # [T, 21, 3]
        for grasp in grasps(contact[:, s]):
            for k in range(21):
                on = grasp & (weights[:, s, k] > 0)
                if on.sum() < min_frames:
                    continue
                med = np.median(canon[on, k], axis=0)
                inl = on & (np.linalg.norm(canon[:, k] - med, axis=-1) <= reject_m)
                if inl.sum() < min_frames:
                    continue
                anchor = canon[inl, k].mean(0)
                pts[grasp, s, k] = pose[grasp, :3, :3] @ anchor + pose[grasp, :3, 3]
                wts[grasp, s, k] = np.where(on[grasp], 1.0, on.sum() / grasp.sum())
    return pts, wts


def depth_keypoints(hand_keypoints: np.ndarray, conf: np.ndarray, depth: np.ndarray, mask: np.ndarray,
                    K: np.ndarray, min_conf: float, skin_m: float = SKIN_M) -> tuple[np.ndarray, np.ndarray]:
    """Hand keypoints of frame 0 lifted with the frame-0 depth map where the human mask covers their pixel.

    hand_keypoints [2, 21, 2] pixels, conf [2, 21]; depth [H, W] metres (0: unknown) and mask [H, W] bool at the
    keypoints' resolution; K [3, 3]. The depth there is the skin the camera sees; the point is moved skin_m
    further along the viewing ray (a joint lies under the skin). Returns points [2, 21, 3] metres (camera 0;
    0 where not lifted) and a mask [2, 21] bool.
    """
    H, W = depth.shape
    col = np.clip(hand_keypoints[..., 0].astype(int), 0, W - 1)
    row = np.clip(hand_keypoints[..., 1].astype(int), 0, H - 1)
    z = depth[row, col]
    ok = (conf >= min_conf) & mask[row, col] & (z > 0)
    p = np.stack([(hand_keypoints[..., 0] - K[0, 2]) / K[0, 0] * z, (hand_keypoints[..., 1] - K[1, 2]) / K[1, 1] * z,
                  z], -1)
    p += skin_m * p / np.maximum(np.linalg.norm(p, axis=-1, keepdims=True), 1e-9)
    return np.where(ok[..., None], p, 0.0).astype(np.float32), ok


def depth_shift(points: np.ndarray, weights: np.ndarray, contact: np.ndarray, depth_points: np.ndarray,
                depth_ok: np.ndarray, part_poses: np.ndarray, hand_part: np.ndarray,
                min_keypoints: int = DEPTH_MIN_KEYPOINTS) -> tuple[np.ndarray, np.ndarray]:
    """The contact keypoints of the grasp that holds at frame 0 moved by the hand's offset from the depth map.

    points [T, 2, 21, 3] world metres, weights [T, 2, 21] (lift_keypoints, anchor_keypoints); contact [T, 2];
    depth_points [2, 21, 3], depth_ok [2, 21] (depth_keypoints); part_poses [T, P, 4, 4]; hand_part [2]
    (held_part; -1: the shift is not turned with a part). Per hand in contact at frame 0, the median over the
    keypoints both lifted there and seen by the depth map of depth point minus contact keypoint is the shift;
    on each frame t of that grasp it is turned by the held part's rotation since frame 0 and added to the
    lifted keypoints. A hand with fewer than min_keypoints such keypoints is left as it is.
    Returns points [T, 2, 21, 3] float32 and the shifts [2, 3] (metres, frame 0; 0 where none).
    """
    pts = points.astype(np.float32).copy()
    shifts = np.zeros((2, 3), np.float32)
    for s in range(2):
        both = (weights[0, s] > 0) & depth_ok[s]
        if not contact[0, s] or both.sum() < min_keypoints:
            continue
        shifts[s] = np.median(depth_points[s][both] - points[0, s][both], axis=0)
        grasp = grasps(contact[:, s])[0]  # the first run starts at frame 0
        if hand_part[s] >= 0:
            R = part_poses[:, hand_part[s], :3, :3]
            turn = np.einsum("tij,kj->tik", R, R[0])  # R_t R_0^T
        else:
            turn = np.broadcast_to(np.eye(3), (len(pts), 3, 3))
        d = np.einsum("tij,j->ti", turn[grasp], shifts[s])  # [n, 3]
        on = weights[grasp, s] > 0
        pts[grasp, s] += np.where(on[..., None], d[:, None], 0.0)
    return pts, shifts
