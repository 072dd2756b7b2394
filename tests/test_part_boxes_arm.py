"""The parts' boxes (in-plane axes of a partly seen face, posing) and the penetration of the forearms and hands:
lifted keypoints moved out of the boxes, Stage II's arm_box term on the arm vertices past the clearance, and the
arm refit's clearance pass taking the hand out of a box the reach put it in."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from arthoi_jax import stage2, stage2_init
from arthoi_jax import stage2_losses as L
from arthoi_jax.body import ik
from arthoi_jax.body import joint_names as jn
from arthoi_jax.body.model import joints_and_vertices
from arthoi_jax.config import BodyConfig
from arthoi_jax.geometry.boxes import box_sdf
from arthoi_jax.io.body_model_file import load_body_model
from arthoi_jax.part_boxes import part_boxes, posed_boxes
from tests.stage2_scene import FAST, problem

ARM_CFG = dataclasses.replace(FAST, penetration_model="arm_box")


def _turn(deg: float) -> np.ndarray:
    a = np.deg2rad(deg)
    return np.array([[np.cos(a), -np.sin(a), 0.0], [np.sin(a), np.cos(a), 0.0], [0.0, 0.0, 1.0]])


def test_in_plane_axes_follow_the_edges_of_a_partly_seen_face():
    """A 0.8 x 0.5 m face at z = 2 turned 20 deg in its plane, its lower-left triangle hidden (a person in front):
    the principal axes of what is seen lie ~10 deg off the edges, the box's axes on them, its extents the face's."""
    u, v = np.meshgrid(np.arange(-0.4, 0.4 + 1e-9, 0.01), np.arange(-0.25, 0.25 + 1e-9, 0.01), indexing="ij")
    seen = (u + 0.4) / 0.8 + (v + 0.25) / 0.5 > 0.8  # the corner triangle under the person is missing
    R = _turn(20.0)
    means = np.stack([u[seen], v[seen], np.zeros(seen.sum())], -1) @ R.T + [0.0, 0.0, 2.0]
    pca = np.linalg.svd(means - means.mean(0), full_matrices=False)[2][0]
    assert np.rad2deg(np.arccos(abs(pca @ R[:, 0]))) > 5.0  # what the box took before
    box = part_boxes(means.astype(np.float32), np.ones(len(means), int), 1, thickness_m=0.05, pad_m=0.0)[1]
    axes, half = box[1:4], box[4]
    long = np.argmax(half[:2])
    assert np.rad2deg(np.arccos(abs(axes[long] @ R[:, 0]))) < 1.0
    assert np.rad2deg(np.arccos(abs(axes[1 - long] @ R[:, 1]))) < 1.0
    size = 2 * half[[long, 1 - long]]  # the 2-98 % extents: inside the face, short of it where it thins out
    assert np.all(size <= [0.8 + 0.005, 0.5 + 0.005]) and np.all(size >= [0.9 * 0.8, 0.9 * 0.5])


def test_posed_boxes_move_with_the_part_as_the_penetration_term_does():
    means = np.stack(np.meshgrid(np.linspace(-0.3, 0.3, 16), np.linspace(-0.5, 0.5, 16), [2.0]), -1).reshape(-1, 3)
    boxes = part_boxes(means.astype(np.float32), np.ones(len(means), int), 1, thickness_m=0.05, pad_m=0.0)
    pose = np.eye(4)
    pose[:3, :3], pose[:3, 3] = _turn(30.0), [0.1, -0.2, 0.3]
    centre, axes, half = posed_boxes(boxes, pose[None, None])
    x = np.array([[0.05, 0.1, 2.02], [0.05, 0.1, 1.98], [0.5, 0.0, 2.02]])  # frame 0: inside 2 cm, outside, outside
    moved = x @ pose[:3, :3].T + pose[:3, 3]
    sdf = np.asarray(box_sdf(jnp.asarray(moved, jnp.float32), *(jnp.asarray(a[0], jnp.float32) for a in
                                                                 (centre, axes, half))))
    frame0 = np.asarray(box_sdf(jnp.asarray(x, jnp.float32), *(jnp.asarray(boxes[1:, k], jnp.float32) for k in
                                                               (0, slice(1, 4), 4))))
    np.testing.assert_allclose(sdf, frame0, atol=1e-5)
    assert sdf[0] == pytest.approx(-0.02, abs=1e-4) and sdf[1] > 0 and sdf[2] > 0
    loss = L.box_penetration_loss(jnp.asarray(moved, jnp.float32)[None], jnp.asarray(pose, jnp.float32)[None, None],
                                  jnp.asarray(boxes))
    assert float(loss) == pytest.approx(0.02**2, rel=1e-3)


def test_keypoints_inside_or_near_a_box_move_out_to_the_clearance():
    """The door of _door_part (front face z = 2, 5 cm deep) turned 30 deg and moved: a keypoint 1 cm inside and
    one 4 mm in front go to 1 cm in front along the face's normal; one 5 cm in front and an unlifted one stay."""
    means = np.stack(np.meshgrid(np.linspace(-0.3, 0.3, 16), np.linspace(-0.5, 0.5, 16), [2.0]), -1).reshape(-1, 3)
    boxes = part_boxes(means.astype(np.float32), np.ones(len(means), int), 1, thickness_m=0.05, pad_m=0.0)
    pose = np.eye(4)
    pose[:3, :3], pose[:3, 3] = _turn(30.0), [0.1, -0.2, 0.3]
    frame0 = np.array([[0.0, 0.1, 2.01], [0.1, 0.0, 1.996], [0.0, 0.0, 1.95], [0.0, 0.2, 2.01]])
    kp = np.zeros((1, 2, 21, 3), np.float32)
    kw = np.zeros((1, 2, 21), np.float32)
    kp[0, 0, :4] = frame0 @ pose[:3, :3].T + pose[:3, 3]
    kw[0, 0, :3] = 1.0
    out = stage2_init.keypoints_out_of_boxes(kp, kw, boxes, pose[None, None], 0.01)
    back = (out[0, 0, :4] - pose[:3, 3]) @ pose[:3, :3]  # to frame 0
    np.testing.assert_allclose(back[:2], [[0.0, 0.1, 1.99], [0.1, 0.0, 1.99]], atol=1e-4)
    np.testing.assert_allclose(out[0, 0, 2:], kp[0, 0, 2:], atol=1e-6)  # far enough; not lifted; zeros
    np.testing.assert_allclose(out[0, 1], kp[0, 1])


@pytest.fixture(scope="module")
def model():
    return load_body_model(BodyConfig())


def test_arm_box_term_tests_the_forearms_and_hands_with_the_clearance(model):
    """The tiny problem's plane through the right wrist: Stage II's arm_box term is lambda_pen x the squared depths
    past the 3 mm clearance of the forearm and hand vertices, the same sum however the term is wired."""
    cfg = dataclasses.replace(ARM_CFG, window_frames=0, use_render_loss=False, use_prior_loss=False,
                              use_foot_loss=False, use_smoothness_loss=False, use_kinematic_loss=False,
                              use_contact_loss=False, use_penetration_loss=True, lambda_pen=1.0)
    data, _ = problem(model, cfg, target_offset=(0.0, 0.0, 0.0))
    arm = np.asarray(data.body_points)
    np.testing.assert_array_equal(arm, np.concatenate([ik.arm_vertices(model, s) for s in ("left", "right")]))
    p = stage2.initial_params(data.init, 1)
    terms = np.asarray(stage2.loss_terms(p, data, jax.random.PRNGKey(0), cfg, None))
    verts = np.asarray(stage2.human_in_scene(p, data)[0])[:, arm]
    c, a, h = posed_boxes(np.asarray(data.part_boxes, np.float64), np.asarray(data.object_poses, np.float64))
    sdf = np.stack([np.asarray(box_sdf(jnp.asarray(v), *(jnp.asarray(x[t], jnp.float32) for x in (c, a, h))))
                    for t, v in enumerate(verts)])
    expected = np.sum(np.maximum(0.003 - sdf, 0.0) ** 2)
    assert expected > 1e-4  # the hand is in the box
    assert terms[stage2.TERMS.index("penetration")] == pytest.approx(expected, rel=1e-4)
    assert np.count_nonzero(terms) == 1


def test_refit_clearance_takes_the_hand_out_of_the_box(model):
    """The right wrist's target lies 3 cm in front of a part's face (the tiny problem's plane, its box 5 cm deep
    behind): the reach puts the hand's vertices into the box; the clearance pass keeps them the margin outside,
    the wrist within 5 cm of the target (it overshoots: after the large early clearance gradients Adam's steps stay
    small, and the fit draws the hand back slowly; 1 cm with a clearance weight of 10)."""
    data, face = problem(model, ARM_CFG)
    n = 2  # frames (the problem's first two): the IK's cost
    base = jax.tree.map(lambda x: x[:n], data.init).replace(betas=data.init.betas)
    target = face - [0.0, 0.0, 0.03]
    kp = np.zeros((n, 2, 21, 3), np.float32)
    kw = np.zeros((n, 2, 21), np.float32)
    kp[:, 1, 0], kw[:, 1, 0] = target, 1.0
    boxes = stage2_init.scene_boxes(data.obj, 1, ARM_CFG)
    poses = np.asarray(data.object_poses)[:n]
    c = ik.Clearance(jnp.asarray(ik.arm_vertices(model, "right")),
                     *(jnp.asarray(a, jnp.float32) for a in posed_boxes(boxes, poses)))
    out = []
    for clear in (None, (boxes, poses, 0.003)):
        init = stage2_init.refit_arms(model, base, kp, kw, clear)
        axes = jax.tree.map(lambda _: 0, init).replace(betas=None)
        j, v = jax.vmap(joints_and_vertices, in_axes=(None, axes, None))(model, init, c.vertices)
        sdf = jax.vmap(box_sdf)(v, c.centre, c.axes, c.half)
        err = np.linalg.norm(np.asarray(j[:, jn.joint_index("right_wrist")]) - target, axis=-1)
        out.append((float(sdf.min()), float(err.max())))
    (reach_sdf, _), (clear_sdf, clear_err) = out
    assert reach_sdf < -0.005  # the hand 5 mm or more inside the box
    assert clear_sdf > 0.003 - 0.001
    assert clear_err < 0.05
