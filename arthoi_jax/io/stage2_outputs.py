"""The stage2 and evaluate_hoi stages' disk side: read the earlier stages, call Stage II / the metrics, write
human_motion.npz (+ .json), object_transforms.json, losses.png, rerender.mp4 (input | re-render | overlay),
metrics.json and hand_to_handle.png. All writes are atomic."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from arthoi_jax import interaction_metrics as im
from arthoi_jax import metrics
from arthoi_jax.io import media
from arthoi_jax.io.human_motion import load_hoi_truth, load_human_motion, save_human_motion
from arthoi_jax.io.outputs import conventions, write_json

log = logging.getLogger("arthoi_jax")
CAMERA_UP = np.array([0.0, -1.0, 0.0])  # OpenCV y points down; used when the scene's floor is unknown


def _plot(path: Path, curves: dict, xlabel: str, ylabel: str, log_y: bool = False) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, (x, y) in curves.items():
        ax.plot(x, y, label=name)
    if log_y:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend()
    media.write_figure(path, fig)


def run_stage2(cfg, bundle, segment_dir: Path, stage1_dir: Path, out: Path) -> None:
    from arthoi_jax import stage2
    from arthoi_jax.io.body_model_file import load_body_model

    if bundle.smplx_init is None:
        log.info("stage2: the bundle has no person (smplx_init is empty); nothing to do")
        return
    model = load_body_model(cfg.body)
    data = stage2_data(cfg, bundle, segment_dir, stage1_dir, model)
    res = stage2.optimize(data, cfg.stage2, cfg.render, progress=cfg.output.progress)
    save_stage2(cfg, bundle, segment_dir, model, data, res, out)


def stage2_data(cfg, bundle, segment_dir: Path, stage1_dir: Path, model):
    """Stage II's inputs (stage2.Stage2Data) of a bundle with a person, from the segment and stage1 folders."""
    from arthoi_jax import stage1, stage2_init
    from arthoi_jax.io import stage1_outputs

    seg = stage1_outputs.load_segmentation(segment_dir)
    poses, _ = stage1_outputs.load_stage1(stage1_dir)
    if cfg.stage2.mode == "joint":  # the baseline starts from the per-frame PnP poses, not Stage I's result
        poses = stage1.initial_poses(seg, bundle.tracks, bundle.visibility, bundle.K, cfg.stage1,
                                     bundle.T_cam_world)[1]
    return stage2_init.prepare(bundle, seg, poses, model, cfg.stage2, cfg.stage1, cfg.render,
                               cfg.segmentation.binding_radius_m)


def save_stage2(cfg, bundle, segment_dir: Path, model, data, res, out: Path) -> None:
    """Writes a Stage2Result `res` (of `data`) into `out`: human_motion.npz (+ .json), object_transforms.json,
    losses.json (+ losses.png), rerender.mp4."""
    from arthoi_jax import stage2, stage2_render
    from arthoi_jax.io.body_model_file import license_free_model_file

    truth = load_hoi_truth(segment_dir.parent / "generate")
    save_human_motion(out, res.params, res.scale, res.offset, fps=bundle.fps,
                      up=truth.up if truth is not None else CAMERA_UP, flat_hand_mean=model.flat_hand_mean,
                      gender=model.gender, model_file=str(cfg.body.model_path or license_free_model_file()))
    write_json(out / "object_transforms.json", {
        "convention": "pose[t][p] maps part p's frame-0 points to frame t; world = camera of frame 0 (OpenCV)",
        **conventions(bundle.fps, None if truth is None else truth.up),
        "mode": cfg.stage2.mode, "frames": res.object_poses.tolist()})
    write_json(out / "losses.json", {"terms": dict(zip(stage2.TERMS, res.terms.tolist())),
                                     "total_per_step": res.losses.tolist()})
    if cfg.output.plots:
        _plot(out / "losses.png", {"total": (np.arange(len(res.losses)), res.losses)}, "step", "loss", log_y=True)
    if cfg.output.video:
        H, W = bundle.image_size
        rerender = stage2_render.render_sequence(data, res, bundle.K, cfg.render, H, W)
        overlay = (0.5 * bundle.frames + 0.5 * rerender).round().astype(np.uint8)
        media.write_video(out / "rerender.mp4", np.concatenate([bundle.frames, rerender, overlay], axis=2), bundle.fps)
    log.info("stage2: scale %.3f, offset %s m; final terms %s", res.scale, np.round(res.offset, 3).tolist(),
             {k: round(float(v), 5) for k, v in zip(stage2.TERMS, res.terms) if v})


def evaluate_hoi(cfg, bundle, generate_dir: Path, stage2_dir: Path, out: Path) -> None:
    import json

    import jax.numpy as jnp

    from arthoi_jax.body.model import BodyParams, forward_sequence, params_from_smplx
    from arthoi_jax.io.body_model_file import load_body_model
    from arthoi_jax.synthetic.hoi import FOOT_JOINT_INDEX, GRIP_JOINT, HAND_KEYPOINT_INDEX

    if not (stage2_dir / "human_motion.npz").exists():
        log.info("evaluate_hoi: no Stage II result (no person in the scene); nothing to do")
        return
    truth = load_hoi_truth(generate_dir)
    model = load_body_model(cfg.body)
    hm = load_human_motion(stage2_dir)
    T = hm["transl"].shape[0]
    p = BodyParams.zeros(model, T).replace(
        betas=jnp.asarray(hm["betas"][0]), global_orient=jnp.asarray(hm["global_orient"]),
        body_pose=jnp.asarray(hm["body_pose"].reshape(T, 21, 3)), transl=jnp.asarray(hm["transl"]),
        left_hand_pose=jnp.asarray(hm["left_hand_pose"].reshape(T, 15, 3)),
        right_hand_pose=jnp.asarray(hm["right_hand_pose"].reshape(T, 15, 3)), jaw_pose=jnp.asarray(hm["jaw_pose"]),
        expression=jnp.asarray(hm["expression"]))
    o = forward_sequence(model, p)
    s, off = float(hm["scene_scale"]), hm["scene_offset"]
    motions = {"stage2": (s * np.asarray(o.vertices) + off, s * np.asarray(o.joints) + off)}
    oi = forward_sequence(model, params_from_smplx(model, bundle.smplx_init))
    motions["init"] = (np.asarray(oi.vertices), np.asarray(oi.joints))
    if bundle.gt is not None and bundle.gt.human is not None:  # the ground truth, scored as the estimates are
        og = forward_sequence(model, params_from_smplx(model, bundle.gt.human))
        motions["gt"] = (np.asarray(og.vertices), np.asarray(og.joints))
    report = {"thresholds": {"foot_contact_m": im.FOOT_CONTACT_M, "foot_slide_m_per_frame": im.FOOT_SLIDE_M_PER_FRAME,
                             "contact_m": im.CONTACT_M, "metric_fps": im.METRIC_FPS}}
    if truth is None:
        for name, (_, joints) in motions.items():
            report[name] = {"smoothness_m_per_s": im.smoothness(joints[:, : im.NUM_BODY_JOINTS], bundle.fps)}
        write_json(out / "metrics.json", report)
        return
    gt_joints = motions["gt"][1] if "gt" in motions else None
    side = 0 if truth.hand == "left" else 1
    from arthoi_jax.body.joint_names import joint_index

    grip = joint_index(GRIP_JOINT.format(side=truth.hand))
    # Foot joints' heights above the soles of the body standing in its rest pose (model frame: y up).
    rest = forward_sequence(model, BodyParams.zeros(model, 1).replace(betas=p.betas))
    stand = np.asarray(rest.joints[0, FOOT_JOINT_INDEX, 1] - rest.vertices[0, :, 1].min())
    for name, (verts, joints) in motions.items():
        report[name] = im.interaction_report(
            joints, verts, bundle.fps, foot_idx=FOOT_JOINT_INDEX, hand_idx=HAND_KEYPOINT_INDEX[side], boxes=truth.boxes,
            contact_frames=truth.contact_frames, up=truth.up, floor_offset=truth.floor_offset,
            foot_stand_height=(s if name == "stage2" else 1.0) * stand, gt_joints=gt_joints, grip=joints[:, grip],
            gt_grip=truth.handle)
    if bundle.gt is not None:
        objs = json.loads((stage2_dir / "object_transforms.json").read_text())
        report["object_rotation_error_deg"] = metrics.summary(metrics.rotation_errors_deg(
            np.asarray(objs["frames"])[1:, 0, :3, :3], bundle.gt.part_poses[1:, 0, :3, :3]))
    report["hoi_contact_frames"] = int(truth.contact_frames.sum())
    write_json(out / "metrics.json", report)
    if cfg.output.plots:
        t = np.arange(T) / bundle.fps
        _plot(out / "hand_to_handle.png", {
            n: (t, 100 * np.linalg.norm(j[:, grip] - truth.handle, axis=-1)) for n, (_, j) in motions.items()},
            "time (s)", "grip joint to handle (cm)")
    for name in motions:
        r = report[name]
        log.info("evaluate_hoi %s: contact %.1f %%, penetration %.3f %%, foot sliding %.3f, MPJPE %.1f mm, "
                 "hand-to-handle median %.1f cm", name, r["contact"]["percent"], r["penetration_percent"],
                 r["foot_sliding"]["score"], r.get("mpjpe_mm", float("nan")),
                 100 * r.get("hand_to_handle_m", {}).get("median", float("nan")))
