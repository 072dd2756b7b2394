"""Synthetic human-object interaction scenes: a posed SMPL-X-format body opens the articulated object.

The person stands in front of the object (facing it, feet planted, knees bent for low handles) and one hand
follows the handle's ground-truth trajectory: the spine, arm and legs are solved per frame by inverse kinematics
through the body model (`body.ik`), the feet held where they were planted. The hand holds the bar as a hand
does: its fingers curled (GRIP_CURL), palm to the part, the wrist and knuckles turned onto the bar by IK targets
(`Placement.wrist_dir`); a second IK pass then keeps the arm's and hand's vertices CLEARANCE_M outside every box
of the object (`body.ik.Clearance`), so the ground truth does not pass through the handle or the door it
swings with (the fridge's forearm goes round the door's free edge). The body is one more mesh part
(id HUMAN_ID) of the object scene, so the mesh renderer draws human and object with correct occlusions.

Ground truth beyond the object's: SMPL-X parameters per frame (`gt.human`), 2D hand keypoints with visibility
(`hand_keypoints`, `hand_keypoint_conf`), foot-contact labels, and `HoiTruth`: hand-contact frames (the frames
where the inverse kinematics holds the hand within CONTACT_RESIDUAL_M of the handle), the handle point per frame,
the object's solids as posed boxes, and the floor plane. `smplx_init` holds the simulated HMR initialization.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from scipy.spatial.transform import Rotation

from arthoi_jax.body import ik
from arthoi_jax.body import joint_names as jn
from arthoi_jax.body.model import BodyModel, BodyParams, forward_sequence, rest_joints
from arthoi_jax.config import HmrSimConfig, SyntheticConfig
from arthoi_jax.errors import ConfigError
from arthoi_jax.io.bundle import HUMAN_ID, MOVING_PART_ID0, STATIC_PART_ID, SceneBundle, SmplxParams
from arthoi_jax.synthetic.hmr_sim import simulate_hmr
from arthoi_jax.synthetic.scene import MeshPart, Scene, build_scene, render_bundle
from arthoi_jax.synthetic.textures import Material

# The hand point that holds the handle (the middle finger's knuckle), and how far in front of the handle bar's
# outer face it sits (half the palm's thickness).
GRIP_JOINT = "{side}_middle1"
PALM_OFFSET_M = 0.03
CONTACT_RESIDUAL_M = 0.02
# The holding hand's fingers curl about the axis that bends them towards the palm (rest pose: palm down, the
# left hand along +x, so -z for the left hand and +z for the right); radians at the joints 1, 2, 3 of the
# index, middle, ring and pinky fingers. The IK keeps the arm and hand vertices CLEARANCE_M outside every box
# of the object (`body.ik.Clearance`).
GRIP_CURL = (0.6, 0.9, 0.5)
CLEARANCE_M = 0.003
CLEAR_ITERS = 300
CLEAR_LR = 0.005
# IK weights (per m^2) of the grip knuckle and of the wrist and knuckle targets that turn the hand onto the bar,
# and of the squared depth of arm vertices inside the clearance margin.
GRIP_WEIGHT, HAND_FRAME_WEIGHT, CLEARANCE_WEIGHT = 10.0, 5.0, 1000.0
# MediaPipe/OpenPose 21-point hand order in SMPL-X output joint names (finger tips are vertex keypoints).
HAND_KEYPOINT_NAMES = {
    side: (f"{side}_wrist",) + tuple(n for f in ("thumb", "index", "middle", "ring", "pinky")
                                     for n in (f"{side}_{f}1", f"{side}_{f}2", f"{side}_{f}3", f"{side}_{f}"))
    for side in ("left", "right")
}
HAND_KEYPOINT_INDEX = np.array([[jn.joint_index(n) for n in HAND_KEYPOINT_NAMES[s]] for s in ("left", "right")])
FOOT_JOINT_INDEX = np.array([jn.joint_index(n) for n in ("left_ankle", "left_foot", "right_ankle", "right_foot")])
KEYPOINT_PIXEL_NOISE = 1.0
VISIBLE_CONF, OCCLUDED_CONF = 0.9, 0.1
# A joint lies up to ~1.5 cm under the skin that hides it from the camera; the fingers curled behind the handle
# bar lie > 2.5 cm behind its front face (at 0.04 m they counted as visible and were lifted onto the bar's face,
# 4.8 cm in front of the true joints: door_hoi contact fell to 37.5 %).
OCCLUSION_TOL_M = 0.02


@dataclasses.dataclass(frozen=True)
class Placement:
    """Where the person stands, relative to the handle at frame 0 (room frame: z up, object front +y)."""

    hand: str  # "left" | "right": the hand on the handle
    offset: tuple[float, float]  # pelvis (x, y) minus handle (x, y), metres
    crouch_m: float  # pelvis lowered by this much (knees bent)
    # Room direction (at joint value 0; it turns with the part) from the grip knuckle to the wrist: the hand lies
    # flat over the bar, palm to the part, fingers pointing the other way across the bar and curled round it.
    wrist_dir: tuple[float, float, float] = (0.0, 0.0, 1.0)


PLACEMENTS = {
    "door": Placement("left", (-0.30, 0.40), 0.0),
    "drawer": Placement("left", (-0.30, 0.50), 0.30),
    "fridge": Placement("left", (-0.26, 0.48), 0.0, (-1.0, 0.0, 0.0)),
    "lid": Placement("left", (-0.30, 0.45), 0.25, (0.0, 0.0, -1.0)),
}


@dataclasses.dataclass(frozen=True)
class HoiTruth:
    """Interaction ground truth of a synthetic HOI scene (world = camera-0 frame)."""

    contact_frames: np.ndarray  # [T] bool: the hand holds the handle
    hand: str  # "left" | "right"
    handle: np.ndarray  # [T, 3] metres: the point the grip joint should be at
    boxes: np.ndarray  # [T, B, 4, 3] the object's solids (static and moving parts), see interaction_metrics
    up: np.ndarray  # [3] unit, world frame
    floor_offset: float  # floor plane {x : up . x = floor_offset}


def _room_to_world(scene: Scene) -> np.ndarray:
    """[4, 4] room-to-world transform, recovered from the still room part (its rest vertices are room frame)."""
    room = scene.parts[0]
    a, b = room.rest_vertices, room.vertices[0]
    ma, mb = a.mean(0), b.mean(0)
    U, _, Vt = np.linalg.svd((a - ma).T @ (b - mb))
    D = np.diag([1.0, 1.0, np.sign(np.linalg.det(Vt.T @ U.T))])
    R = Vt.T @ D @ U.T
    M = np.eye(4)
    M[:3, :3], M[:3, 3] = R, mb - R @ ma
    return M


def object_boxes(scene: Scene) -> np.ndarray:
    """[T, B, 4, 3] the posed boxes the object's static and moving parts are made of (8 vertices per box)."""
    out = []
    for part in scene.parts:
        if part.part_id < STATIC_PART_ID or part.part_id == HUMAN_ID:
            continue
        V = len(part.rest_vertices)
        if V % 8 or len(part.faces) != 12 * (V // 8):
            raise ConfigError(f"part {part.name!r} is not a union of boxes ({V} vertices, {len(part.faces)} faces)")
        idx = (np.arange(V // 8)[:, None] * 8 + np.array([0, 1, 2, 4])).reshape(-1)
        out.append(part.vertices[:, idx].reshape(scene.num_frames, -1, 4, 3))
    return np.concatenate(out, axis=1)


def _handle(scene: Scene, room_to_world: np.ndarray) -> np.ndarray:
    """[T, 3] the grip target: the centre of the first moving part's handle bar (its last box), moved out of
    the bar's outer face by the bar's half thickness plus PALM_OFFSET_M."""
    part = next(p for p in scene.parts if p.part_id == MOVING_PART_ID0)
    bar = part.vertices[:, -8:]  # [T, 8, 3]
    out_dir = np.einsum("tij,j->ti", scene.part_poses[:, 0, :3, :3], room_to_world[:3, :3] @ [0.0, 1.0, 0.0])
    half = 0.5 * np.ptp(part.rest_vertices[-8:, 1])
    return bar.mean(1) + (half + PALM_OFFSET_M) * out_dir


def _base_pose(model: BodyModel, T: int, room_to_world: np.ndarray, pelvis_room: np.ndarray, hand: str) -> BodyParams:
    """Standing, facing -y (room), arms lowered, the pelvis at `pelvis_room`."""
    # Model frame: y up, facing +z, left at +x -> room: z up, facing -y, left at +x.
    R_room_model = np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])
    R = room_to_world[:3, :3] @ R_room_model
    p = BodyParams.zeros(model, T)
    j0 = np.asarray(rest_joints(model, p.betas, p.expression[0])[0])
    pelvis_world = room_to_world[:3, :3] @ pelvis_room + room_to_world[:3, 3]
    pose = np.zeros((T, 21, 3), np.float32)
    for name, angle in (("left_shoulder", -1.35), ("right_shoulder", 1.35), ("left_elbow", 0.3),
                        ("right_elbow", -0.3)):
        pose[:, jn.SKELETON.index(name) - 1, 2] = angle
    free_side = "left" if hand == "right" else "right"
    sway = 0.08 * np.sin(np.linspace(0, 2 * np.pi, T))  # the idle arm and the head move a little
    pose[:, jn.SKELETON.index(f"{free_side}_elbow") - 1, 1] += sway
    pose[:, jn.SKELETON.index("head") - 1, 1] = 0.5 * sway
    go = np.broadcast_to(Rotation.from_matrix(R).as_rotvec(), (T, 3))
    p = p.replace(global_orient=jnp.asarray(go, jnp.float32), body_pose=jnp.asarray(pose),
                  transl=jnp.asarray(np.broadcast_to(pelvis_world - j0, (T, 3)), jnp.float32))
    if model.use_pca:  # a PCA hand keeps its mean pose
        return p
    return p.replace(**{f"{hand}_hand_pose": jnp.asarray(np.broadcast_to(grip_hand_pose(hand), (T, 15, 3)))})


def grip_hand_pose(hand: str) -> np.ndarray:
    """[15, 3] axis-angles (SMPL-X hand joint order, flat hand mean) of the hand that holds the handle."""
    pose = np.zeros((15, 3), np.float32)
    sign = -1.0 if hand == "left" else 1.0
    for finger in ("index", "middle", "ring", "pinky"):
        for k, angle in enumerate(GRIP_CURL):
            pose[jn.SKELETON.index(f"{hand}_{finger}{k + 1}") - jn.SKELETON.index(f"{hand}_index1"), 2] = sign * angle
    return pose


def pose_human(model: BodyModel, scene: Scene, cfg: SyntheticConfig) -> tuple[BodyParams, HoiTruth]:
    """SMPL-X motion of a person opening the scene's first moving part, and the interaction ground truth."""
    if cfg.object not in PLACEMENTS:
        raise ConfigError(f"synthetic.object: {cfg.object!r} has no human placement for HOI scenes; allowed: "
                          f"{', '.join(PLACEMENTS)}")
    place = PLACEMENTS[cfg.object]
    M = _room_to_world(scene)
    T = scene.num_frames
    handle = _handle(scene, M)
    handle_room = np.linalg.inv(M)[:3, :3] @ handle[0] + np.linalg.inv(M)[:3, 3]
    standing = _base_pose(model, T, M, np.zeros(3), place.hand)
    # Pelvis height of the standing body with its soles on the floor (room z = 0).
    up = M[:3, :3] @ [0.0, 0.0, 1.0]
    verts0 = np.asarray(forward_sequence(model, _first_frame(standing)).vertices[0])
    pelvis_h = -(verts0 @ up).min() + up @ M[:3, 3]
    pelvis_room = np.array([handle_room[0] + place.offset[0], handle_room[1] + place.offset[1],
                            pelvis_h - place.crouch_m])
    base = _base_pose(model, T, M, pelvis_room, place.hand)
    # Feet planted where the standing pose (pelvis at full height) puts them.
    stand = _base_pose(model, T, M, pelvis_room + [0.0, 0.0, place.crouch_m], place.hand)
    feet = np.asarray(forward_sequence(model, stand).joints[:, [jn.SKELETON.index(n) for n in ik.FEET]])
    grip = GRIP_JOINT.format(side=place.hand)
    hand_names, hand_targets = _hand_targets(model, scene, M, place, handle)
    effectors = (grip,) + hand_names + ik.FEET
    targets = np.concatenate([handle[:, None], hand_targets, feet], axis=1)
    weights = np.concatenate([GRIP_WEIGHT * np.ones((T, 1)), HAND_FRAME_WEIGHT * np.ones((T, len(hand_names))),
                              10.0 * np.ones((T, len(ik.FEET)))], axis=1)
    free = ik.arm_chain(place.hand) + ik.LEGS
    body_pose, _ = ik.solve_reach(model, base, effectors, targets, weights, free)
    # Then out of the object: from the reach, the arm and the hand turn until no vertex is inside a box.
    boxes = object_boxes(scene)
    clear = ik.clearance(ik.arm_vertices(model, place.hand), boxes, CLEARANCE_M, CLEARANCE_WEIGHT)
    body_pose, residual = ik.solve_reach(model, base.replace(body_pose=body_pose), effectors, targets,
                                         weights, ik.arm_chain(place.hand), iters=CLEAR_ITERS, lr=CLEAR_LR,
                                         clear=clear)
    params = base.replace(body_pose=body_pose)
    residual = np.asarray(residual)
    contact = residual[:, 0] < CONTACT_RESIDUAL_M
    floor_offset = float(up @ M[:3, 3])
    truth = HoiTruth(contact_frames=contact, hand=place.hand, handle=handle.astype(np.float32),
                     boxes=boxes.astype(np.float32), up=up, floor_offset=floor_offset)
    return params, truth


def _hand_targets(model: BodyModel, scene: Scene, room_to_world: np.ndarray, place: Placement,
                  handle: np.ndarray) -> tuple[tuple[str, ...], np.ndarray]:
    """Where the wrist and the index and pinky knuckles go [T, 3, 3] (world) when the grip knuckle is at `handle`
    [T, 3] and the hand lies as `Placement.wrist_dir` says: the rest body's hand (palm -y, fingers along +x for
    the left hand, -x for the right, thumb side +z) turned onto the part's frame."""
    names = tuple(f"{place.hand}_{j}" for j in ("wrist", "index1", "pinky1"))
    J = np.asarray(rest_joints(model, jnp.zeros(model.num_betas), jnp.zeros(model.num_expression)))
    grip = jn.SKELETON.index(GRIP_JOINT.format(side=place.hand))
    rel = J[[jn.SKELETON.index(n) for n in names]] - J[grip]  # [3, 3] model frame
    sign = 1.0 if place.hand == "left" else -1.0
    rest = np.array([[sign, 0, 0], [0, -1.0, 0], [0, 0, 1.0]]).T  # columns: fingers, palm normal, thumb side
    R = np.einsum("tij,jk->tik", scene.part_poses[:, 0, :3, :3], room_to_world[:3, :3])
    palm = np.einsum("tij,j->ti", R, [0.0, -1.0, 0.0])  # towards the part: against the handle's outward normal
    fingers = -np.einsum("tij,j->ti", R, place.wrist_dir)
    thumb = sign * np.cross(palm, fingers)
    frame = np.stack([fingers, palm, thumb], axis=-1)  # [T, 3, 3] columns
    return names, handle[:, None] + np.einsum("tij,jk,nk->tni", frame, rest.T, rel)


def _first_frame(p: BodyParams) -> BodyParams:
    """The first frame of a sequence, kept as a length-1 sequence (betas are shared, not per frame)."""
    return jax.tree.map(lambda x: x[:1], p).replace(betas=p.betas)


def smplx_params(p: BodyParams, flat_hand_mean: bool) -> SmplxParams:
    """The bundle's SmplxParams of a BodyParams sequence."""
    f = lambda x: np.asarray(x, np.float32)  # noqa: E731
    return SmplxParams(betas=f(p.betas), global_orient=f(p.global_orient), body_pose=f(p.body_pose),
                       transl=f(p.transl), left_hand_pose=f(p.left_hand_pose), right_hand_pose=f(p.right_hand_pose),
                       jaw_pose=f(p.jaw_pose), expression=f(p.expression), flat_hand_mean=flat_hand_mean)


def _hand_keypoints(joints: np.ndarray, depth: np.ndarray, scene: Scene, rng) -> tuple[np.ndarray, np.ndarray]:
    """Projected hand joints [T, 2, 21, 2] with pixel noise, confidence [T, 2, 21]: high where the joint is not
    hidden (its depth within OCCLUSION_TOL_M of the rendered depth at its pixel), low where it is."""
    p = joints[:, HAND_KEYPOINT_INDEX]  # [T, 2, 21, 3]
    K = scene.K
    uv = p[..., :2] / p[..., 2:3] * [K[0, 0], K[1, 1]] + [K[0, 2], K[1, 2]]
    H, W = scene.height, scene.width
    inside = (uv[..., 0] >= 0) & (uv[..., 0] < W) & (uv[..., 1] >= 0) & (uv[..., 1] < H) & (p[..., 2] > 0)
    col = np.clip(uv[..., 0].astype(int), 0, W - 1)
    row = np.clip(uv[..., 1].astype(int), 0, H - 1)
    surf = depth[np.arange(len(depth))[:, None, None], row, col]
    visible = inside & (p[..., 2] <= surf + OCCLUSION_TOL_M)
    conf = np.where(visible, VISIBLE_CONF, np.where(inside, OCCLUDED_CONF, 0.0))
    uv = np.clip(uv + rng.normal(scale=KEYPOINT_PIXEL_NOISE, size=uv.shape), 0, [W, H])
    return uv.astype(np.float32), conf.astype(np.float32)


HUMAN_MATERIAL = Material("noise", (0.86, 0.66, 0.55), (0.45, 0.30, 0.40), 0.06, 7)


def generate_hoi_scene(cfg: SyntheticConfig, model: BodyModel, hmr: HmrSimConfig) -> tuple[SceneBundle, HoiTruth]:
    """The object scene of `cfg` with a person opening it, rendered, with ground truth and an HMR-like init."""
    scene = build_scene(dataclasses.replace(cfg, human=False))
    params, truth = pose_human(model, scene, cfg)
    out = forward_sequence(model, params)
    verts, joints = np.asarray(out.vertices, np.float64), np.asarray(out.joints, np.float64)
    faces = np.asarray(model.faces)
    human = MeshPart("human", HUMAN_ID, np.asarray(model.v_template, np.float64), faces,
                     np.zeros(len(faces), np.int32), (HUMAN_MATERIAL,), verts)
    scene = scene.with_part(human)
    b = render_bundle(scene)
    rng = np.random.default_rng([cfg.seed, 9])
    kp, conf = _hand_keypoints(joints, b.gt.depth, scene, rng)
    gt_human = smplx_params(params, model.flat_hand_mean)
    b = dataclasses.replace(
        b, smplx_init=simulate_hmr(model, gt_human, hmr), hand_keypoints=kp, hand_keypoint_conf=conf,
        foot_contact=np.ones((scene.num_frames, 4), bool), gt=dataclasses.replace(b.gt, human=gt_human))
    return b, truth

