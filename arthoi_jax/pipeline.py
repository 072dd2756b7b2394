"""Stage order, run folders and outputs. The only module besides arthoi_jax.io that touches the disk.

Each stage is a function `(ctx, out_dir) -> None` that reads what earlier stages left in the run folder
and writes its own results into `out_dir` (a temporary folder renamed into place when the stage ends).
A stage whose optimization diverges (OptimizationError) leaves no stage folder but `<stage>.failed/` with the
last good state, and the error, naming that file, propagates (run.py exits with status 2).
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
from pathlib import Path
from typing import Callable

import yaml

from arthoi_jax import config as config_lib
from arthoi_jax.errors import ConfigError, InputError, OptimizationError
from arthoi_jax.io import bundle as bundle_io
from arthoi_jax.io import media
from arthoi_jax.io.outputs import atomic_dir, failed_dir, prepare_run_dir, save_failed_state, write_atomic

log = logging.getLogger("arthoi_jax")


@dataclasses.dataclass(frozen=True)
class RunContext:
    config: config_lib.Config
    run_dir: Path
    overwrite: bool

    def stage_dir(self, name: str) -> Path:
        return self.run_dir / name

    def bundle(self) -> bundle_io.SceneBundle:
        """The scene bundle of this run: the generated/preprocessed one, or the configured file."""
        for stage in ("preprocess", "generate"):
            p = self.stage_dir(stage) / "bundle"
            if p.exists():
                return bundle_io.load_bundle(p)
        if self.config.scene.source == "bundle":
            return bundle_io.load_bundle(self.config.scene.bundle)
        raise InputError(f"{self.run_dir}: no scene bundle yet; run the 'generate' or 'preprocess' stage first")


def _generate(ctx: RunContext, out: Path) -> None:
    from arthoi_jax.synthetic.scene import generate_scene

    if ctx.config.synthetic.human:  # a person opens the object (issue 8): synthetic/hoi.py
        from arthoi_jax.io.body_model_file import load_body_model
        from arthoi_jax.io.human_motion import save_hoi_truth
        from arthoi_jax.synthetic.hoi import generate_hoi_scene

        b, truth = generate_hoi_scene(ctx.config.synthetic, load_body_model(ctx.config.body), ctx.config.hmr_sim)
        save_hoi_truth(out, truth)
    else:
        b = generate_scene(ctx.config.synthetic)
    bundle_io.save_bundle(b, out / "bundle")
    media.write_video(out / "preview.mp4", b.frames, b.fps)
    media.write_png(out / "preview.png", media.contact_sheet(b.frames))
    log.info("generated %s: %d frames %dx%d, %d tracks", ctx.config.synthetic.object, b.num_frames,
             b.image_size[1], b.image_size[0], b.tracks.shape[1])


def _preprocess(ctx: RunContext, out: Path) -> None:
    """Video -> bundle; for a synthetic scene, re-tracks the generated bundle unless the tracker is 'gt'."""
    from arthoi_jax.io.outputs import write_json
    from arthoi_jax.io.preprocess_inputs import read_side_inputs
    from arthoi_jax.io.video import read_video
    from arthoi_jax.preprocess import adapters
    from arthoi_jax.preprocess.preview import overlay
    from arthoi_jax.preprocess.video_to_bundle import resolve, retrack_bundle, video_to_bundle

    cfg, source = ctx.config.preprocess, ctx.config.scene.source
    methods, details = resolve(cfg, source), {}
    if source == "synthetic":
        if methods["tracker"] == "gt":
            log.info("preprocess: tracker 'gt', the generated bundle is used as it is")
            write_json(out / "summary.json", {**methods, "bundle": str(ctx.stage_dir("generate") / "bundle"),
                                              "note": "tracker 'gt': the tracks are the generated bundle's exact "
                                                      "ground-truth tracks; no new bundle is written"})
            return
        b = retrack_bundle(bundle_io.load_bundle(ctx.stage_dir("generate") / "bundle"), cfg,
                           adapters.make_tracker(cfg, methods))
    else:
        sam, tracker = adapters.make_sam(cfg, methods), adapters.make_tracker(cfg, methods)
        depth_model = adapters.make_depth_model(cfg, methods)
        human = adapters.make_human_steps(ctx.config, methods)
        video = ctx.config.scene.video or _generate_video(ctx.config, out)
        v = read_video(video, width=cfg.width, height=cfg.height, max_frames=cfg.max_frames,
                       frame_step=cfg.frame_step, fps=cfg.fps)
        side = read_side_inputs(cfg, methods, len(v.frames), v.frames.shape[1:3], ctx.config.body.num_expression)
        hmr_hands = side.smplx_init is not None and side.hand_keypoints is None
        b = video_to_bundle(v.frames, v.fps, v.source_size, cfg, side, methods=methods, sam=sam,
                            tracker=tracker, depth_model=depth_model,
                            joints_fn=adapters.make_joints_fn(ctx.config.body) if hmr_hands else None,
                            human=human, details=details)
    bundle_io.save_bundle(b, out / "bundle")
    write_json(out / "summary.json", {**details,
        **methods, "frames": b.num_frames, "height": b.image_size[0], "width": b.image_size[1], "fps": b.fps,
        "tracks": b.tracks.shape[1], "visible_fraction": float(b.visibility.mean()),
        "empty_object_mask_frames": [t for t in range(b.num_frames) if not b.object_masks[t].any()],
        "smplx_init": b.smplx_init is not None, "hand_keypoints": b.hand_keypoints is not None,
        "body_landmarks": b.body_landmarks is not None, "camera_moves": b.T_cam_world is not None,
        "foot_contact_frames": None if b.foot_contact is None else int(b.foot_contact.any(1).sum())})
    shown = overlay(b)
    media.write_video(out / "preview.mp4", shown, b.fps)
    media.write_png(out / "preview.png", media.contact_sheet(shown))


def _generate_video(config: config_lib.Config, out: Path) -> Path:
    """Text in: the video of `preprocess.prompt` from the `text_to_video` checkpoint, written to out/generated.mp4."""
    from arthoi_jax.preprocess.text_to_video import text_to_video

    t2v = config.text_to_video
    g = text_to_video(t2v.checkpoint, config.preprocess.prompt, device=config.preprocess.device, dtype=t2v.dtype,
                      num_frames=t2v.num_frames, height=t2v.height, width=t2v.width, fps=t2v.fps,
                      num_inference_steps=t2v.num_inference_steps, guidance_scale=t2v.guidance_scale, seed=t2v.seed)
    media.write_video(out / "generated.mp4", g.frames, g.fps)
    log.info("preprocess: generated %d frames from the prompt with %s", len(g.frames), g.pipeline)
    return out / "generated.mp4"


def _segment(ctx: RunContext, out: Path) -> None:
    """Flow-based part segmentation (Eq. 1-3) -> segment/segmentation.npz + masks.png. On a video, an object
    without a moving part is reported as rigid (segment/rigid.json with the evidence) and kept static."""
    from arthoi_jax.errors import NoMovingPartError
    from arthoi_jax.io import stage1_outputs
    from arthoi_jax.io.outputs import write_json
    from arthoi_jax.segmentation import rigid_segmentation, segment

    cfg, b = ctx.config, ctx.bundle()
    mask_fn = None
    if cfg.segmentation.dynamic_mask == "sam":
        if not cfg.preprocess.sam_checkpoint:
            raise ConfigError("segmentation.dynamic_mask: 'sam' needs preprocess.sam_checkpoint (a SAM checkpoint, "
                              "see third_party/README.md); 'grabcut' or 'tracks' need no weights")
        from arthoi_jax.preprocess.sam import SamAdapter

        mask_fn = SamAdapter.from_checkpoint(cfg.preprocess.sam_checkpoint, cfg.preprocess.sam_model_type,
                                             cfg.preprocess.device).predict
    args = (b.frames, b.object_masks, b.depth, b.K, b.tracks, b.visibility, cfg.segmentation)
    try:
        seg = segment(*args, mask_fn, T_cam_world=b.T_cam_world)
    except NoMovingPartError as e:
        if cfg.scene.source != "video":
            raise
        # A real video of a rigid object: report it, keep the object static in the world, and go on to Stage II.
        log.warning("segment: the object is rigid (%s); Stage I keeps it static", e)
        write_json(out / "rigid.json", {"rigid": True, "reason": str(e), "evidence": e.evidence})
        seg = rigid_segmentation(*args, T_cam_world=b.T_cam_world)
    stage1_outputs.save_segmentation(out, seg)
    media.write_png(out / "masks.png", media.contact_sheet(stage1_outputs.mask_overlay(b.frames, seg.part_masks)))
    labels = seg.track_labels
    log.info("segment: %d moving part(s); tracks %d static, %d moving, %d undecided; %d Gaussians, %d binding pairs",
             seg.num_parts, (labels == 0).sum(), (labels > 0).sum(), (labels < 0).sum(), len(seg.weights),
             len(seg.binding_pairs))


def _stage1(ctx: RunContext, out: Path) -> None:
    """Object articulation (Eq. 4-8) -> stage1/transforms.json, joints.json, result.npz, rerender.mp4."""
    import numpy as np

    from arthoi_jax import stage1
    from arthoi_jax.io import stage1_outputs
    from arthoi_jax.io.human_motion import load_hoi_truth

    cfg, b = ctx.config, ctx.bundle()
    seg = stage1_outputs.load_segmentation(ctx.stage_dir("segment"))
    if seg.num_parts == 0:  # a rigid object (segment/rigid.json): the identity motion, static in the world
        T = b.num_frames
        none = np.zeros((T, 0, 4, 4))
        res = stage1.Stage1Result(poses=none, init_poses=none, pnp_poses=none, joints=(),
                                  iterations=np.zeros(T, np.int32), loss=np.zeros(T),
                                  terms=np.zeros((T, len(stage1.TERMS))))
        log.info("stage1: no moving part (rigid object); the object stays static in the world")
    else:
        res = stage1.optimize(b.frames, b.object_masks, b.tracks, b.visibility, b.K, seg, cfg.stage1, cfg.render,
                              cfg.segmentation.binding_radius_m, progress=cfg.output.progress,
                              T_cam_world=b.T_cam_world)
    truth = load_hoi_truth(ctx.stage_dir("generate"))  # a synthetic room knows its up axis
    stage1_outputs.save_stage1(out, res, b.fps, up=None if truth is None else truth.up)
    if cfg.output.video:
        H, W = b.image_size
        scene = stage1.build_scene(seg, b.K, (H, W), cfg.stage1, cfg.segmentation.binding_radius_m)
        stage1_outputs.write_side_by_side(out / "rerender.mp4", b.frames,
                                          stage1.render_sequence(scene, res.poses, cfg.render, H, W, b.T_cam_world),
                                          b.fps)
    for p, j in enumerate(res.joints):
        log.info("stage1: part %d %s, axis %s, fit residual %.4f m, %d Adam steps", p + 1, j.joint_type,
                 j.axis.round(3).tolist(), j.residual_m, res.iterations.sum())


def _evaluate(ctx: RunContext, out: Path) -> None:
    """App. C metrics against the ground truth when the bundle has one -> evaluate/metrics.json, joint_values.png.
    For a video: also the preprocessing measurements (frames with a body, reprojection error, camera motion) and,
    for a rigid object, segment/rigid.json's evidence."""
    import json

    from arthoi_jax import metrics
    from arthoi_jax.io import stage1_outputs
    from arthoi_jax.io.outputs import write_json

    b = ctx.bundle()
    seg = stage1_outputs.load_segmentation(ctx.stage_dir("segment"))
    poses, joints = stage1_outputs.load_stage1(ctx.stage_dir("stage1"))
    report = metrics.articulation_report(poses, joints, seg.part_masks, b.gt)
    rigid, summary = ctx.stage_dir("segment") / "rigid.json", ctx.stage_dir("preprocess") / "summary.json"
    if rigid.exists():  # no moving part: the evidence (residual motion after camera compensation)
        report["rigid"] = json.loads(rigid.read_text())
    if ctx.config.scene.source == "video" and summary.exists():  # what preprocessing measured on the video
        measured = json.loads(summary.read_text())
        report["video"] = {k: measured[k] for k in ("frames", "width", "height", "fps", "frames_with_body",
                                                    "reprojection_error_px", "body_height_m", "camera_motion",
                                                    "depth_placement") if k in measured}
    write_json(out / "metrics.json", report)
    if ctx.config.output.plots and joints:  # a rigid object has no joint to plot
        gt_parts = [e.get("gt_part", -1) for e in report["parts"]]
        gt_values = [b.gt.joint_values[:, g] if b.gt is not None and g >= 0 else None for g in gt_parts]
        gt_types = [b.gt.joint_types[g] if b.gt is not None and g >= 0 else None for g in gt_parts]
        stage1_outputs.write_joint_plot(out / "joint_values.png", b.fps, joints, gt_values, gt_types)
    if "revolute_rotation_error_deg" in report:
        r = report["revolute_rotation_error_deg"]
        log.info("evaluate: revolute rotation error mean %.2f deg, max %.2f deg", r["mean"], r["max"])
    if "prismatic_translation_error_m" in report:
        log.info("evaluate: prismatic translation error mean %.4f m", report["prismatic_translation_error_m"]["mean"])


def _stage2(ctx: RunContext, out: Path) -> None:
    """Human motion (Eq. 9-12) -> stage2/human_motion.npz + .json, object_transforms.json, losses.png, video."""
    from arthoi_jax.io import stage2_outputs

    stage2_outputs.run_stage2(ctx.config, ctx.bundle(), ctx.stage_dir("segment"), ctx.stage_dir("stage1"), out)


def _evaluate_hoi(ctx: RunContext, out: Path) -> None:
    """App. C interaction metrics of Stage II and of its initialization -> evaluate_hoi/metrics.json, plots."""
    from arthoi_jax.io import stage2_outputs

    stage2_outputs.evaluate_hoi(ctx.config, ctx.bundle(), ctx.stage_dir("generate"), ctx.stage_dir("stage2"), out)


# Stages in run order, and which scene sources run them.
STAGES: dict[str, tuple[Callable[[RunContext, Path], None], tuple[str, ...]]] = {
    "generate": (_generate, ("synthetic",)),
    "preprocess": (_preprocess, ("video", "synthetic")),
    "segment": (_segment, ("synthetic", "bundle", "video")),
    "stage1": (_stage1, ("synthetic", "bundle", "video")),
    "stage2": (_stage2, ("synthetic", "bundle", "video")),
    "evaluate": (_evaluate, ("synthetic", "bundle", "video")),
    "evaluate_hoi": (_evaluate_hoi, ("synthetic", "bundle", "video")),
}


def run(config_path, *, overrides=(), stage: str = "all", out=None, resume=False, overwrite=False) -> Path:
    """Runs one stage or all of them for the config; returns the run folder."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    cfg = config_lib.load_config(config_path, overrides)
    if cfg.batch.scenes:  # many scenes in one run (vmapped, sharded, resumable): arthoi_jax/batch/runner.py
        from arthoi_jax.batch.runner import run_batch

        return run_batch(config_path, cfg, overrides=overrides, stage=stage, out=out, overwrite=overwrite)
    if stage != "all" and stage not in STAGES:
        raise ConfigError(f"--stage {stage!r} is not a stage; allowed: all, {', '.join(STAGES)}")
    if cfg.scene.source == "bundle" and not cfg.scene.bundle:
        raise ConfigError("scene.bundle: required when scene.source is 'bundle'")
    if cfg.scene.source == "video" and not cfg.scene.video and not (cfg.preprocess.prompt and
                                                                    cfg.text_to_video.checkpoint):
        raise ConfigError("scene.video: required when scene.source is 'video', unless the video is to be generated: "
                          "then set preprocess.prompt and text_to_video.checkpoint (a local diffusers folder)")
    run_dir = Path(out) if out else Path("out") / cfg.scene.name
    # A single named stage writes into an existing run folder; it still refuses to replace its own results.
    run_dir = prepare_run_dir(run_dir, resume=resume or stage != "all", overwrite=overwrite)
    ctx = RunContext(cfg, run_dir, overwrite)
    write_atomic(run_dir / "config.yaml", yaml.safe_dump(config_lib.to_dict(cfg), sort_keys=False).encode())
    names = [stage] if stage != "all" else [n for n, (_, sources) in STAGES.items() if cfg.scene.source in sources]
    for name in names:
        fn, _ = STAGES[name]
        if resume and stage == "all" and ctx.stage_dir(name).exists():
            log.info("%s: done before, kept (--resume)", name)
            continue
        log.info("stage %s", name)
        try:
            with atomic_dir(ctx.stage_dir(name), overwrite=overwrite) as tmp:
                fn(ctx, tmp)
        except OptimizationError as e:  # the stage's folder is not written; its last good state is kept
            raise save_failed_state(ctx.stage_dir(name), e) from None
        shutil.rmtree(failed_dir(ctx.stage_dir(name)), ignore_errors=True)  # an earlier failure, now superseded
    return run_dir
