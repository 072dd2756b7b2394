"""Run configuration: one frozen dataclass per stage, loaded strictly from YAML.

`load_config(path, overrides)` reads a YAML file (which may name a `base:` YAML it extends), applies
`--set key=value` overrides, and builds `Config`. Every unknown key, wrong type or out-of-range value raises
`ConfigError` naming the dotted key and what is allowed. Defaults are the paper's (App. A) where it gives one.

A field's allowed range is declared with `bounded(default, lo, hi)`; its allowed values with `Literal`.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from pathlib import Path
from typing import Any, Literal, Optional

import yaml

from arthoi_jax.errors import ConfigError


def bounded(default, lo=None, hi=None, *, lo_open: bool = False):
    """A dataclass field whose value must lie in [lo, hi] (or (lo, hi] with lo_open)."""
    return dataclasses.field(default=default, metadata={"range": (lo, hi, lo_open)})


# ---------------------------------------------------------------------------------------------------------
# Sections. Each stage owns one; fields carry the paper's defaults.


@dataclasses.dataclass(frozen=True)
class SceneConfig:
    """Where the scene comes from."""

    name: str = "scene"
    # synthetic: generated from `synthetic`; bundle: read from `bundle`; video: preprocessed from `video`.
    source: Literal["synthetic", "bundle", "video"] = "synthetic"
    bundle: Optional[str] = None
    video: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class SyntheticConfig:
    """Procedural articulated scene rendered by the mesh renderer (never by the Gaussian rasterizer)."""

    object: Literal["door", "drawer", "fridge", "lid", "cabinet2"] = "door"
    texture: Literal["textured", "low"] = "textured"
    width: int = bounded(256, 32, 2048)
    height: int = bounded(192, 32, 2048)
    num_frames: int = bounded(32, 2, 2000)
    fps: float = bounded(30.0, 0.0, 240.0, lo_open=True)
    seed: int = bounded(0, 0)
    fov_deg: float = bounded(55.0, 10.0, 150.0)
    # Peak joint value over the sequence: degrees for revolute parts, metres for prismatic ones.
    max_angle_deg: float = bounded(60.0, 0.0, 180.0)
    max_translation_m: float = bounded(0.3, 0.0, 2.0)
    human: bool = False
    # Camera placement: horizontal distance from the point it looks at on the object, height above the floor,
    # and yaw about the vertical from the wall normal (positive: seen from the room's +x side, which appears on
    # the image's left). None: the object type's own 3/4 view (arthoi_jax/synthetic/objects.py).
    camera_distance_m: Optional[float] = bounded(None, 0.0, 50.0, lo_open=True)
    camera_height_m: Optional[float] = bounded(None, 0.0, 10.0)
    camera_yaw_deg: Optional[float] = bounded(None, -85.0, 85.0)
    # Ground-truth tracks sampled on the visible object at frame 0 (fewer when fewer pixels are visible).
    num_tracks: int = bounded(1000, 1, 100000)


@dataclasses.dataclass(frozen=True)
class RenderConfig:
    """Gaussian rasterizer settings (gsplat conventions)."""

    mode: Literal["tiled", "dense"] = "tiled"
    tile_size: int = bounded(16, 4, 64)
    # Gaussians kept per tile after depth sorting; more are counted as overflow and dropped.
    tile_capacity: int = bounded(256, 1, 65536)
    near: float = bounded(0.01, 0.0, None, lo_open=True)
    far: float = bounded(1e10, 0.0, None, lo_open=True)
    eps2d: float = bounded(0.3, 0.0)
    # Per-Gaussian alpha clamp: 0.99 as in 3DGS (gsplat 1.5.3's CUDA kernel uses 0.999). Below 1 so log(1 - alpha) is finite.
    max_alpha: float = bounded(0.99, 0.0, 0.9999, lo_open=True)
    background: tuple[float, float, float] = (0.0, 0.0, 0.0)


@dataclasses.dataclass(frozen=True)
class SegmentationConfig:
    """Flow-based part segmentation (Sec. 3.1, App. A)."""

    dynamic_px: float = bounded(5.0, 0.0)
    static_px: float = bounded(2.0, 0.0)
    quasi_static_percentile: float = bounded(10.0, 0.0, 100.0)
    quasi_static_min_px: float = bounded(1.0, 0.0)
    binding_radius_m: float = bounded(0.05, 0.0, None, lo_open=True)
    # How the dynamic-part mask M^d(t) is made from the point prompts (Eq. 2). "sam" needs
    # preprocess.sam_checkpoint; "grabcut" (default, no weights): GrabCut seeded by the tracks; "tracks": the
    # Voronoi partition of the object mask by the track points.
    dynamic_mask: Literal["sam", "grabcut", "tracks"] = "grabcut"
    max_prompts: int = bounded(32, 1)  # per kind (positive/negative) and frame, for SAM
    # Moving parts: sequential RANSAC over rigid motions of the dynamic tracks.
    max_moving_parts: int = bounded(4, 1, 16)
    min_part_tracks: int = bounded(12, 6)
    part_reproj_px: float = bounded(3.0, 0.0, None, lo_open=True)
    ambiguity_px: float = bounded(1.0, 0.0)  # a track explained as well by two motions stays unlabelled
    # Canonical object Gaussians: every `gaussian_stride`-th frame-0 object pixel.
    gaussian_stride: int = bounded(4, 1, 64)
    max_binding_pairs: int = bounded(1024, 1)


@dataclasses.dataclass(frozen=True)
class Stage1Config:
    """Object articulation (Eq. 4-8, App. A)."""

    lr: float = bounded(1e-4, 0.0, None, lo_open=True)
    iters_per_frame: int = bounded(200, 1)
    lambda_r: float = bounded(1.0, 0.0)
    lambda_tr: float = bounded(2.0, 0.0)
    lambda_a: float = bounded(0.05, 0.0)
    lambda_s: float = bounded(1.0, 0.0)
    beta_o: float = bounded(1.0, 0.0)
    grad_clip: float = bounded(1.0, 0.0, None, lo_open=True)
    early_stop_rel_tol: float = bounded(1e-4, 0.0)
    early_stop_patience: int = bounded(20, 1)
    # free_se3: a free pose per part and frame (the paper); revolute | prismatic | auto: one joint value per part
    # and frame, the joint (axis, pivot; auto: its type too) fitted to the closed-form initial poses.
    articulation: Literal["free_se3", "revolute", "prismatic", "auto"] = "free_se3"
    # Per-frame initial pose: joint (a joint fitted to all frames' tracks at once) | pnp (per-frame PnP of the
    # tracks) | previous (the previous frame's result). See arthoi_jax/stage1.py.
    init: Literal["joint", "pnp", "previous"] = "joint"
    init_reproj_px: float = bounded(3.0, 0.0, None, lo_open=True)  # RANSAC inlier threshold of the PnP init
    # Beyond the paper: the closed-form init (PnP, joint fit) skips tracks whose frame-0 window is edge-like,
    # structure-tensor eigenvalue ratio below this (preprocess.lk_tracker.corner_ratio; 0: every track), as LK
    # tracks slide along stripes. Off: at 0.1 on LK tracks (benchmarks/articulation.py --tracker lk) the drawer
    # improves (2.84 -> 1.91 cm, axis 6.92 -> 4.45 deg) but the door (1.02 -> 1.98 deg) and cabinet2 (7.68 ->
    # 8.22 deg) get worse; fridge and lid unchanged.
    init_min_corner_ratio: float = bounded(0.0, 0.0, 1.0)
    # Beyond the paper: the joint from the tracks is then refined by aligning the part's frame-0 pixels to every
    # frame (articulation.refine_joint_photometric): LK tracks slide along a growing striped front. On LK tracks
    # drawer 2.84 -> 0.54 cm, axis 6.92 -> 0.97 deg; cabinet2 3.61 / 6.83 deg, axis 5.01 -> 0.73 / 1.61, 0.14;
    # tracks that the track fit reprojects within stage1.PHOTOMETRIC_MIN_TRACK_PX keep it (exact tracks: drawer
    # 0.01 cm).
    init_photometric: bool = True
    render_downsample: int = bounded(4, 1, 64)  # the reconstruction loss compares images this much smaller
    steps_per_chunk: int = bounded(25, 1)  # steps per jitted lax.scan call (progress and checks in between)
    # L_tr per track: 0 the paper's squared error; > 0 soft-L1 of this scale in pixels (losses.tracking_loss).
    track_robust_px: float = bounded(0.0, 0.0)
    # 1-DOF modes, beyond the paper (arthoi_jax/stage1_joint.py): before the per-frame steps, Adam over the shared
    # joint (axis, pivot) and all frames' values on all frames' losses (0 steps: keep the track-fitted joint). Off
    # in every config: on LK tracks it did worse than the track fit (docs/status.md, first item).
    joint_iters: int = bounded(0, 0)
    joint_lr_value: float = bounded(3e-3, 0.0, None, lo_open=True)  # radians | metres per step
    joint_lr_axis: float = bounded(3e-3, 0.0, None, lo_open=True)  # radians per step
    joint_lr_pivot: float = bounded(1e-3, 0.0, None, lo_open=True)  # metres per step
    # L_tr's weight in that objective relative to lambda_tr: at 1 the pixel errors of biased tracks (LK on a
    # surface seen obliquely) outweigh the render loss, which alone can tell a large rotation (the lid's axis).
    joint_track_weight: float = bounded(0.01, 0.0)
    # 1-DOF modes: frames where a part keeps fewer visible tracks than this take the part's value from a grid search
    # of the render loss (search_values values over +-search_range_deg | +-search_range_m; 0: off) along the path
    # of least cost + search_smooth * (constant-velocity violation)^2 through the other frames' values, monotone
    # if asked (stage1_joint.py). On LK tracks the lid's are lost by frame 8 of 32 (turned 15 of 70 deg): 44.88 /
    # 70.00 deg mean / max without it (prismatic picked), with it and the alignment on the tracked frames
    # (stage1.PHOTOMETRIC_MIN_TRACKS, TYPE_MARGIN) at 37 values (5 deg steps) 3.41 / 9.04, smooth 3: 3.01 / 6.20,
    # 61 values 2.84 / 6.10, 91 values 2.78 / 5.15 (benchmarks/articulation.py --tracker lk --scenes lid).
    # A count, not a share of frame 0's: the exact tracks keep 32 of the lid's 600.
    reseed_below_tracks: int = bounded(3, 0)
    search_values: int = bounded(61, 0)
    search_range_deg: float = bounded(90.0, 0.0, 180.0, lo_open=True)
    search_range_m: float = bounded(0.5, 0.0, None, lo_open=True)
    search_smooth: float = bounded(3.0, 0.0)
    monotone: bool = False
    # Ablation switches (Table 5): each removes its term from Eq. 5.
    use_render_loss: bool = True
    use_tracking_loss: bool = True
    use_articulation_loss: bool = True
    use_smoothness_loss: bool = True


@dataclasses.dataclass(frozen=True)
class Stage2Config:
    """Human motion (Eq. 9-12, App. A)."""

    iters: int = bounded(1000, 1)
    lr_pose: float = bounded(1e-3, 0.0, None, lo_open=True)
    lr_camera: float = bounded(1e-4, 0.0, None, lo_open=True)
    # Beyond the paper (0: its constant rates): both rates fall (cosine) to 5 % over this last fraction of the
    # iterations. At constant rates Adam keeps moving every frame's pose by ~lr per step on the noisy windowed
    # gradients, and the feet slid 0.1-0.8 cm/frame whatever lambda_fs (drawer_hoi: foot sliding 0.31 at
    # lambda_fs 1e4 and 1e5; decayed over the last 30 %: 0.017, MPJPE 61.7 vs 60.7-61.2 mm).
    lr_decay_fraction: float = bounded(0.0, 0.0, 1.0)
    lambda_p: float = bounded(1.0, 0.0)
    lambda_fs: float = bounded(10.0, 0.0)
    lambda_s: float = bounded(1e4, 0.0)
    lambda_k: float = bounded(1e4, 0.0)
    # L_k is Geman-McClure on the 3D distance with this scale: a lifted keypoint farther than it from its joint
    # (a wrong depth) pulls with a bounded force instead of dragging the body.
    kinematic_sigma_m: float = bounded(0.05, 0.0, None, lo_open=True)
    lambda_c: float = bounded(1e5, 0.0)
    # Beyond the paper (0: off): the pelvis's depth held near the start's, which the frame-0 depth map set
    # (stage2_init.align_to_depth), per m^2 (stage2_losses.depth_anchor_loss). Silhouettes and keypoints leave the
    # depth loose, and the terms drifted it: drawer_hoi with only the render, prior, foot and smoothness terms
    # ended 8.9 cm nearer the camera than its ground truth, its start 1.4 cm.
    lambda_depth: float = bounded(0.0, 0.0)
    # Beyond the paper (0: its term): the contact term is free within this distance of the object surface. The
    # hand's joint centres lie a finger's thickness off the surface it touches, and where the hand hides the gripped
    # stretch of a handle the nearest Gaussian is the face behind it. HOI suite (session-4 bases, the HOI configs'
    # other keys), hand-to-handle median cm / penetration % door, drawer, fridge, lid: 0 -> 1.7 / 2.9 / 3.3 / 0.7,
    # 0.038 / 0.291 / 0.178 / 0.007; 1 cm (the HOI configs) -> 1.6 / 3.0 / 2.4 / 0.4, 0.045 / 0.342 / 0.133 / 0.009;
    # 1.5 cm -> 1.6 / 3.1 / 2.0 / 0.4, 0.021 / 0.388 / 0.107 / 0.000 (drawer MPJPE 48.9 -> 51.4 -> 56.6 mm: its
    # lifted keypoints lie 3.8 cm in front of its joints, and the term no longer holds the hand back;
    # benchmarks/results/interaction_s6_tol*.json).
    contact_tolerance_m: float = bounded(0.0, 0.0)
    beta_h: float = bounded(1.0, 0.0)
    eta: float = bounded(1.0, 0.0)
    grad_clip: float = bounded(1.0, 0.0, None, lo_open=True)
    # Penetration: human vertices behind the object surface (signed distance along the surface normal).
    lambda_pen: float = bounded(1e5, 0.0)
    # decoupled: object poses fixed from Stage I (the paper); joint: object part poses optimized with the human.
    mode: Literal["decoupled", "joint"] = "decoupled"
    # Contact keypoints (Fig. 3c): a 2D hand keypoint is lifted when its confidence >= contact_conf and the
    # Stage I object render covers its pixel with alpha >= contact_alpha. Without bundle contact labels, a hand
    # is in contact when a confident keypoint lies within contact_radius_px of the moving-part mask.
    contact_conf: float = bounded(0.5, 0.0, 1.0)
    contact_alpha: float = bounded(0.5, 0.0, 1.0)
    contact_radius_px: float = bounded(4.0, 0.0)
    contact_offset_m: float = bounded(0.015, 0.0, 0.2)  # lifted keypoints moved this far towards the camera
    # Per hand and frame, only keypoints lifted within this depth of the hand's nearest lifted one are kept.
    contact_depth_band_m: float = bounded(0.05, 0.0, None, lo_open=True)
    # Each keypoint takes the nearest surface within this many pixels (the gripped edge, not the face behind it).
    contact_window_px: float = bounded(4.0, 0.0)
    # Beyond the paper (false: the Stage I render as fitted): the lifting renders each Gaussian moved by its own
    # part's pose, without Eq. 4's blend, which leaves the Gaussians near another part between the two parts'
    # poses (door_hoi: those near the door's free edge, where the handle is, 5-15 cm off the turned door).
    # Lifted vs GT hand joints, median cm, door / drawer / fridge / lid (benchmarks/contact_keypoints.py on the
    # session-4 bases): 3.71 / 2.73 / 5.51 / 2.31 -> rigid 2.42 / 2.70 / 4.26 / 2.41 -> with the grip offsets
    # below 2.01 / 1.78 / 3.74 / 1.85 -> and contact_anchor 1.06 / 1.02 / 2.84 / 1.53. Stage II (the same bases,
    # off -> rigid + offsets -> + anchor): door contact 34.4 -> 100 -> 100 %, hand-to-handle median door 3.92 ->
    # 0.90 -> 1.0, drawer 1.66 -> 1.8 -> 1.5, fridge 10.59 -> 5.1 -> 3.9, lid 3.87 -> 2.5 -> 2.1 cm; MPJPE 61.0 /
    # 77.2 / 65.0 / 53.8 -> 51.9 / 85.2 / 66.7 / 52.0 -> 56.6 / 88.2 / 59.8 / 48.3 mm; penetration 0.014 / 0.512 /
    # 3.514 / 0.819 -> 0.050 / 0.680 / 0.767 / 0.772 -> 0.018 / 0.411 / 0.737 / 0.953 % (penetration terms off;
    # interaction_suite_s4.json -> interaction_suite_s5_A_noanchor_*.json -> interaction_suite_s5_A.json). All
    # three on in the HOI configs. With
    # contact_window_px 8 on top (interaction_suite_s5_A_window8.json): hand-to-handle 1.7 / 2.9 / 3.3 / 0.7 cm,
    # MPJPE 57.7 / 48.9 / 56.8 / 51.1 mm, penetration 0.038 / 0.291 / 0.287 / 0.007 %, door contact 93.8 %; not
    # the default: measured before the HOI configs' penetration terms were on.
    contact_rigid_parts: bool = False
    # Beyond the paper (None: contact_offset_m for every keypoint): per finger segment (knuckle, middle joint, end
    # joint, tip) how far in front of the touched surface a lifted keypoint is put (negative: behind it), for the
    # index to pinky fingers and for the thumb: a grip has its knuckles a palm's thickness in front of the bar and
    # its finger tips behind it (contact.grip_offsets). The HOI configs' values are the per-segment medians, over
    # the four HOI scenes, of the offset that puts each rigid-lifted keypoint at its ground-truth joint's depth
    # (knuckles 3-7 cm, middle joints 0-4 cm, end joints -4-1 cm): fitted to the generator's grip (synthetic.hoi
    # GRIP_CURL, PALM_OFFSET_M), not measured on real hands.
    contact_finger_offsets_m: Optional[tuple[float, float, float, float]] = None
    contact_thumb_offsets_m: Optional[tuple[float, float, float, float]] = None
    # Beyond the paper (false: its per-frame lifting): a grasp is rigid with the part it holds, so each hand's
    # lifted keypoints are mapped into the held part's frame with Stage I's poses, outlier frames dropped, and the
    # robust mean put back on every frame of the grasp, weighted by its support where it was not lifted
    # (contact.anchor_keypoints). Session-3 HOI ground truth, hand-to-handle / MPJPE / foot sliding, off ->
    # on: fridge 6.2 cm / 62.7 mm / 0.035 -> 4.7 / 58.4 / 0.062 (weight 1 on the filled keypoints: 3.3 / 82.5 /
    # 0.135; that hand turns 125 deg against the door it holds), door 2.17 / 58.2 / 0.028 -> 2.60 / 60.0 / 0.053
    # (weight 1: 2.07 / 59.2 / 0.038). Session-4 ground truth (the hand grips round the bar), fridge: 10.59 cm /
    # 65.0 mm / penetration 3.51 % -> 5.87 / 70.8 / 2.15 % (interaction_suite_s4{,_anchor_fridge}.json; the other
    # objects unmeasured). Not a clear win: off (benchmarks/results/interaction_anchor_s3_base_C.json).
    contact_anchor: bool = False
    # Beyond the paper (false: off): the hand's contact keypoints over the grasp that holds at frame 0 are moved by
    # the median offset, over the keypoints lifted both ways at frame 0, from them to the keypoints lifted with the
    # frame-0 depth map where the human mask covers them (contact.depth_keypoints: the skin the camera sees, the
    # joint contact.SKIN_M under it), turned with the held part (contact.depth_shift). The object render behind a
    # hand is the part's face or a handle the hand mostly hides, and the grip offsets above are medians over four
    # grips; the depth map sees the hand itself, and the object's Gaussians come from the same map.
    contact_depth_shift: bool = False
    # Start of the human-to-scene alignment (the paper optimizes its "camera parameters" from the HMR result and
    # says no more). keypoints: the body moved along the ray by the hand keypoints' depth gap, which also carries
    # the HMR arm error (bodies 28-32 cm towards the camera where the error was 15-20 cm); depth: by the frame-0
    # depth over the human mask against the body's own depth (stage2_init.align_to_depth; HOI suite: pelvis error
    # 15-20 -> 1.7-3.7 cm with the renderer's exact depth; a real clip's is an estimate). One or the other
    # (stage2.start_params); depth leaves the body where it was when the mask has too few depth values.
    align: Literal["keypoints", "depth"] = "depth"
    # Beyond the paper: before Stage II the arms (collar to wrist) are turned by IK so that the hands reach the
    # contact keypoints (stage2_init.refit_arms); the refitted pose is also L_p's target. L_k alone (Geman-McClure,
    # 5 cm) cannot pull a hand 15-20 cm (door_hoi: 19.7 cm hand-to-handle). Off with use_kinematic_loss=false.
    arm_ik: bool = True
    # Reconstruction loss L_r^h: rendered this much smaller, on `render_frames` random frames per step (0: all).
    render_downsample: int = bounded(4, 1, 64)
    render_frames: int = bounded(2, 0)
    human_gaussians: int = bounded(1500, 16)
    # Frame subsampling: each step optimizes a random window of this many consecutive frames (0: all frames).
    window_frames: int = bounded(8, 0)
    # Object surface points used by the contact and penetration terms; body vertices tested for penetration.
    surface_points: int = bounded(512, 16)
    body_points: int = bounded(256, 16)
    # Penetration (stage2_losses.penetration_loss): the shell thickness behind the visible surface called inside
    # (the HOI suite's ground-truth bodies: 0-0.97 % of their non-finger vertices wrongly called inside with 10 cm,
    # 0-0.40 % with 5 cm, lid_hoi the most), and the depth tolerated (the ground truth's fingers sit 1-2 mm inside
    # the handle).
    penetration_radius_m: float = bounded(0.05, 0.0, None, lo_open=True)
    penetration_margin_m: float = bounded(0.002, 0.0)
    # Beyond the paper (shell: the signed distance to the visible surface above): box tests every non-finger
    # vertex against a solid box per moving part, the visible face plus a thickness prior (arthoi_jax.part_boxes,
    # stage2_losses.box_penetration_loss). The shell misses a forearm that enters a face the camera never saw
    # (fridge_hoi: 1-2 cm into the door's edge, 7 cm from the nearest Gaussian); penetration_margin_m applies.
    # Its gradient reaches every parameter: through the body pose alone (global orientation, translation and
    # alignment held) fridge_hoi ended at MPJPE 394 mm (PA-MPJPE 85), penetration 2.48 %, where the start had
    # only the left arm in the door's box. Off in the HOI configs: on the s3 base (interaction_suite_s4_B.json
    # vs interaction_suite_s4_B_off.json, margin 0) fridge 2.03 -> 0.54 % but MPJPE 62.7 -> 99.9 mm (the whole
    # body 4 cm towards the camera); lid 0.26 -> 0.28 %, 65.2 -> 67.9 mm; door, drawer unchanged (their
    # penetration is fingers in the handle bar, which has 1-5 Gaussians and is not in any box).
    # arm_box: the same boxes, tested on the forearms' and hands' vertices (fingers included; body.ik.arm_vertices),
    # kept penetration_clearance_m outside (the ground truth's clearance is 3 mm). With its gradient stopped at
    # the arms' rotations (collar to wrist) fridge_hoi diverged (MPJPE 316 mm): L_k and the contact term then
    # moved the body towards the door at lr_pose metres per step while the arms turned out at lr_pose radians.
    # On in the HOI configs with arm_ik_clearance and keypoint_clearance_m (measured there).
    penetration_model: Literal["shell", "box", "arm_box"] = "shell"
    penetration_thickness_m: float = bounded(0.05, 0.0, None, lo_open=True)
    penetration_pad_m: float = bounded(0.0, 0.0)  # the boxes' in-plane growth past their Gaussians, each side
    penetration_clearance_m: float = bounded(0.003, 0.0)
    # Beyond the paper: the arm refit (arm_ik) ends with an IK pass that keeps the forearm and hand vertices
    # penetration_clearance_m outside the parts' boxes (part_boxes, at Stage I's poses), as the ground truth's
    # generator does (body.ik.Clearance): the IK put the hand into the door the keypoints lie on (fridge_hoi,
    # session-4 lifting: Stage II's start 2.93 -> 0.09 % of the vertices inside the object, MPJPE 72.8 -> 70.7 mm).
    # Alone it does not last: after Stage II 3.42 % (L_k and the contact term draw the hand back in).
    arm_ik_clearance: bool = False
    # Beyond the paper (0: off): lifted contact keypoints closer than this to a part's box are moved out to it
    # before the refit and L_k (stage2_init.keypoints_out_of_boxes): a joint centre lies a finger's half thickness
    # off the surface the finger touches (fridge_hoi, session-4 lifting: 25 % of the lifted keypoints within 1 cm
    # of the door's box, 9 % inside; the ground truth's hand joints 5 % within 1 cm, none inside).
    keypoint_clearance_m: float = bounded(0.0, 0.0)
    steps_per_chunk: int = bounded(50, 1)
    # Ablation switches (Table 5).
    use_render_loss: bool = True
    use_prior_loss: bool = True
    use_foot_loss: bool = True
    use_smoothness_loss: bool = True
    use_kinematic_loss: bool = True
    use_contact_loss: bool = True
    use_penetration_loss: bool = True

    def __post_init__(self):
        if self.lambda_depth > 0 and self.align == "keypoints":  # its start is the depth map's (align: depth)
            raise ConfigError("stage2.lambda_depth holds the body at the start align: depth gives it; with "
                              "stage2.align: keypoints set stage2.lambda_depth: 0")


@dataclasses.dataclass(frozen=True)
class HmrSimConfig:
    """Simulated HMR initialization of synthetic HOI scenes: the errors a monocular method makes."""

    seed: int = bounded(0, 0)
    rotation_noise_deg: float = bounded(8.0, 0.0, 90.0)  # per body joint, constant over the clip
    depth_scale_error: float = bounded(0.08, -0.5, 0.5)  # whole body moved along the camera ray by this fraction
    jitter_deg: float = bounded(2.0, 0.0, 45.0)  # per joint and frame, i.i.d.
    jitter_m: float = bounded(0.01, 0.0, 1.0)  # per frame translation, i.i.d.


@dataclasses.dataclass(frozen=True)
class PreprocessConfig:
    """Video -> scene bundle (issue 6). Pixel coordinates use the bundle's convention (pixel centres at +0.5)
    at the OUTPUT size; intrinsics and hand keypoints given for the source video are rescaled with the resize."""

    # Frames: resized at decode time (None keeps the source size; one of the two keeps the aspect ratio).
    width: Optional[int] = bounded(None, 16, 4096)
    height: Optional[int] = bounded(None, 16, 4096)
    max_frames: int = bounded(0, 0)  # 0: every frame
    frame_step: int = bounded(1, 1)  # keep every k-th frame; fps is divided by k
    fps: Optional[float] = bounded(None, 0.0, 240.0, lo_open=True)  # required for a folder of frames
    # Camera: (fx, fy, cx, cy) in source-video pixels, or a horizontal field of view with a centred principal point.
    intrinsics: Optional[tuple[float, float, float, float]] = None
    fov_deg: float = bounded(55.0, 10.0, 150.0)
    prompt: str = ""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # Masks. auto: gt for synthetic bundles, else files when given, else sam when `sam_checkpoint` is set, else
    # grabcut (weight-free: GrabCut seeded by the frame-0 object_box / object_points, carried by optical flow).
    masks: Literal["auto", "gt", "files", "sam", "grabcut"] = "auto"
    object_mask_path: Optional[str] = None  # one PNG (frame 0, carried by the tracks) or a folder of per-frame PNGs
    human_mask_path: Optional[str] = None
    object_points: tuple[tuple[float, float], ...] = ()  # positive SAM prompts on frame 0, output pixels
    object_negative_points: tuple[tuple[float, float], ...] = ()
    object_box: Optional[tuple[float, float, float, float]] = None  # x0, y0, x1, y1 output pixels
    human_points: tuple[tuple[float, float], ...] = ()
    human_box: Optional[tuple[float, float, float, float]] = None
    sam_checkpoint: Optional[str] = None
    sam_model_type: Literal["vit_h", "vit_l", "vit_b"] = "vit_h"  # the paper uses ViT-H
    # Tracks. auto: gt for synthetic bundles; cotracker when `cotracker_checkpoint` is set; else dense (chained
    # DIS flow: lower endpoint error than lk on the synthetic scenes, see benchmarks/tracking.py).
    tracker: Literal["auto", "gt", "lk", "dense", "cotracker"] = "auto"
    cotracker_checkpoint: Optional[str] = None
    grid_step_px: int = bounded(6, 1, 256)  # spacing of the query grid inside the frame-0 object mask
    max_tracks: int = bounded(2000, 1)
    lk_window_px: int = bounded(21, 5, 101)
    lk_levels: int = bounded(3, 0, 8)
    fb_threshold_px: float = bounded(1.0, 0.0, None, lo_open=True)  # forward-backward error that ends a track
    # lk (translation): where the tracks' local map squeezes the surface by s (at most this), the fb threshold
    # grows by s^2 and lk_max_error by s (lk_tracker.track_points); 1: fixed. 1 -> 2 (with the segmentation's
    # dragged-part test, segmentation.DRAGGED_COS): cabinet2 7.68 / 23.52 -> 3.61 / 6.83 deg mean / max, drawer
    # 0.61 cm, door and fridge met (benchmarks/results/articulation_lk_s6_A.json).
    fb_max_scale: float = bounded(2.0, 1.0, None)
    lk_max_error: float = bounded(10.0, 0.0, 255.0, lo_open=True)  # lk: mean grey-level change that ends a track
    # lk: how a track's window follows the surface: translation (re-anchored), or an affine warp refined against
    # frame 0 (preprocess/affine_lk.py). affine halves the endpoint error (benchmarks/tracking.py) but keeps fewer
    # tracks: Stage I loses cabinet2's second door and the drawer gets no better, so it is not the default.
    lk_warp: Literal["translation", "affine"] = "translation"
    # Depth of frame 0. auto: gt for synthetic bundles, file when `depth_path` is set, model when `depth_model`
    # is set, else geometry when a body is fitted (coarse: ground plane under the fitted feet, object at the
    # hand-contact / body depth; see preprocess/scene_depth.py), else constant. Relative (non-metric) model depth
    # is scaled to the fitted body's depth, or without a body so its median on the object is `depth_median_m`.
    depth: Literal["auto", "gt", "file", "model", "geometry", "constant"] = "auto"
    depth_path: Optional[str] = None  # .npy metres, or 16-bit PNG millimetres
    depth_model: Optional[str] = None  # local folder of a transformers depth-estimation model
    depth_median_m: float = bounded(2.5, 0.0, None, lo_open=True)
    # Human initialisation (GVHMR results, hand keypoints [T, 2, 21, 2] in source-video pixels).
    gvhmr_results: Optional[str] = None
    hand_keypoints_path: Optional[str] = None
    # Human perception. auto: none for synthetic scenes; files when human_mask_path is set; else mediapipe
    # (person mask, body landmarks, hand keypoints, foot contact; settings in the `human` section).
    human: Literal["auto", "mediapipe", "files", "none"] = "auto"


@dataclasses.dataclass(frozen=True)
class HumanConfig:
    """Human perception of a real video (MediaPipe legacy solutions, weights inside the wheel) and the
    checkpoint-free body initialization (arthoi_jax/body/fit2d.py)."""

    mask_source: Literal["pose", "selfie"] = "pose"
    model_complexity: int = bounded(1, 0, 2)
    detect_hands: bool = True
    min_detection_confidence: float = bounded(0.5, 0.0, 1.0)
    mask_threshold: float = bounded(0.5, 0.0, 1.0)
    foot_contact_max_speed: float = bounded(0.15, 0.0, None, lo_open=True)  # body heights per second
    foot_contact_min_conf: float = bounded(0.5, 0.0, 1.0)
    # smplx_init: auto = gvhmr when preprocess.gvhmr_results is set, else fit2d when body landmarks exist.
    init: Literal["auto", "gvhmr", "fit2d", "none"] = "auto"
    fit_steps: int = bounded(400, 1)
    fit_lr: float = bounded(0.02, 0.0, None, lo_open=True)
    fit_min_conf: float = bounded(0.3, 0.0, 1.0)  # landmarks below this visibility are ignored
    robust_sigma: float = bounded(0.05, 0.0, None, lo_open=True)  # Geman-McClure scale, fraction of max(H, W)
    body_height_m: float = bounded(1.7, 0.5, 2.5)  # the height prior that fixes metric scale
    body_height_sigma_m: float = bounded(0.05, 0.0, None, lo_open=True)
    lambda_pose: float = bounded(1.0, 0.0)
    lambda_shape: float = bounded(1.0, 0.0)
    lambda_bend: float = bounded(1.0, 0.0)
    lambda_smooth: float = bounded(100.0, 0.0)


@dataclasses.dataclass(frozen=True)
class CameraMotionConfig:
    """Per-frame camera poses from background tracks (preprocess/camera_motion.py) -> bundle.T_cam_world."""

    # auto: estimated for videos (a failure is logged and leaves a static camera), never for synthetic scenes.
    enabled: Literal["auto", "on", "off"] = "auto"
    # auto: rotation (+ least-squares translation) when the depth is a guess (geometry/constant), the full
    # essential-matrix + two-view refinement when it is measured (file/model); see estimate_camera_motion.
    model: Literal["auto", "rotation", "full"] = "auto"
    step_px: int = bounded(16, 1, 256)
    margin_px: int = bounded(8, 0, 256)
    ransac_px: float = bounded(1.0, 0.0, None, lo_open=True)
    min_points: int = bounded(20, 8)


@dataclasses.dataclass(frozen=True)
class TextToVideoConfig:
    """Prompt -> video when the scene has no video (preprocess/text_to_video.py, a local diffusers folder)."""

    checkpoint: Optional[str] = None
    num_frames: int = bounded(49, 2)
    height: int = bounded(480, 8, 4096)
    width: int = bounded(720, 8, 4096)
    fps: float = bounded(8.0, 0.0, 240.0, lo_open=True)
    num_inference_steps: int = bounded(25, 1)
    guidance_scale: float = bounded(7.5, 0.0)
    seed: int = bounded(0, 0)
    dtype: Literal["float32", "float16", "bfloat16"] = "float32"


@dataclasses.dataclass(frozen=True)
class BodyConfig:
    """SMPL-X body model (arthoi_jax.body). Hand poses are full 15 x 3 axis-angles unless use_pca is set."""

    # An SMPL-X .npz/.pkl file or a folder holding SMPLX_{GENDER}.npz; None: the license-free neutral body.
    model_path: Optional[str] = None
    gender: Literal["neutral", "male", "female"] = "neutral"
    num_betas: int = bounded(10, 1, 300)
    num_expression: int = bounded(10, 0, 100)
    use_pca: bool = False
    num_pca_comps: int = bounded(6, 1, 45)
    flat_hand_mean: bool = True
    use_face_contour: bool = False


@dataclasses.dataclass(frozen=True)
class BatchSceneConfig:
    """One scene of a batch run: the batch file's own config with these `key=value` overrides (as --set)."""

    name: str = "scene"
    overrides: tuple[str, ...] = ()  # e.g. synthetic.object=drawer, stage1.use_tracking_loss=false


@dataclasses.dataclass(frozen=True)
class BatchConfig:
    """Many scenes in one run (arthoi_jax.batch): Stage I of a bucket of scenes as one vmapped, sharded program."""

    scenes: tuple[BatchSceneConfig, ...] = ()  # empty: a single-scene run
    # Padded sizes of Gaussians, tracks and binding pairs: the smallest listed size that fits (empty: 256 * 2^k).
    size_buckets: tuple[int, ...] = ()
    max_scenes: int = bounded(8, 1)  # scenes per vmapped program; a larger bucket runs as several
    checkpoint_every: int = bounded(100, 1)  # optimization steps between checkpoints (rounded up to chunks)
    devices: int = bounded(0, 0)  # 0: every device JAX sees (all hosts); the scene axis is sharded over them
    distributed: bool = False  # call jax.distributed.initialize() first (multi-host; see arthoi_jax/batch/sharding.py)


@dataclasses.dataclass(frozen=True)
class OutputConfig:
    """What a run writes besides its numbers."""

    video: bool = True
    plots: bool = True
    progress: bool = True


@dataclasses.dataclass(frozen=True)
class Config:
    scene: SceneConfig = SceneConfig()
    synthetic: SyntheticConfig = SyntheticConfig()
    render: RenderConfig = RenderConfig()
    segmentation: SegmentationConfig = SegmentationConfig()
    stage1: Stage1Config = Stage1Config()
    stage2: Stage2Config = Stage2Config()
    hmr_sim: HmrSimConfig = HmrSimConfig()
    preprocess: PreprocessConfig = PreprocessConfig()
    human: HumanConfig = HumanConfig()
    camera_motion: CameraMotionConfig = CameraMotionConfig()
    text_to_video: TextToVideoConfig = TextToVideoConfig()
    body: BodyConfig = BodyConfig()
    batch: BatchConfig = BatchConfig()
    output: OutputConfig = OutputConfig()


# ---------------------------------------------------------------------------------------------------------
# Loading.


def load_config(path: str | Path | None = None, overrides: typing.Sequence[str] = ()) -> Config:
    """Builds a `Config` from a YAML file and `key=value` overrides (dotted keys, YAML values).

    Raises:
      ConfigError: the file is unreadable or not a mapping, or a key, type or value is invalid.
    """
    raw: dict = _read_yaml(Path(path), seen=()) if path is not None else {}
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: expected key=value, e.g. stage1.lr=1e-3")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise ConfigError(f"--set {key}: cannot parse value {text!r} as YAML ({e})") from None
        _set_dotted(raw, key.strip(), value)
    return from_dict(Config, raw)


def from_dict(cls: type, data: Any, prefix: str = ""):
    """Builds dataclass `cls` from a nested mapping, validating every key (see module docstring)."""
    where = prefix or "config"
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping of keys to values, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in data.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if key not in fields:
            close = difflib.get_close_matches(str(key), fields, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"unknown key {name!r}{hint}; allowed keys: {', '.join(fields)}")
        kwargs[key] = _coerce(hints[key], value, name)
        lo, hi, lo_open = fields[key].metadata.get("range", (None, None, False))
        _check_range(kwargs[key], lo, hi, lo_open, name)
    return cls(**kwargs)


def to_dict(config) -> dict:
    """The inverse of `from_dict`: plain Python containers, safe to dump as YAML or JSON."""
    out = dataclasses.asdict(config)
    return _lists(out)


def _lists(x):
    if isinstance(x, dict):
        return {k: _lists(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_lists(v) for v in x]
    return x


def _read_yaml(path: Path, seen: tuple) -> dict:
    if path.resolve() in seen:
        raise ConfigError(f"{path}: 'base' chain loops back to itself")
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({e})") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    base = data.pop("base", None)
    if base is None:
        return data
    if not isinstance(base, str):
        raise ConfigError(f"{path}: 'base' must be a path to another YAML file, got {base!r}")
    merged = _read_yaml(path.parent / base, seen + (path.resolve(),))
    _merge(merged, data)
    return merged


def _merge(dst: dict, src: dict) -> None:
    for k, v in src.items():
        if isinstance(v, dict) and isinstance(dst.get(k), dict):
            _merge(dst[k], v)
        else:
            dst[k] = v


def _set_dotted(raw: dict, key: str, value) -> None:
    parts = key.split(".")
    node = raw
    for p in parts[:-1]:
        nxt = node.setdefault(p, {})
        if not isinstance(nxt, dict):
            raise ConfigError(f"--set {key}: {p!r} is a value, not a section")
        node = nxt
    node[parts[-1]] = value


def _type_name(tp) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(tp, value, name: str):
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, name)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1:
            return _coerce(inner[0], value, name)
        raise TypeError(f"unsupported config type {tp}")
    if origin is Literal:
        if value not in args or isinstance(value, bool) != any(isinstance(a, bool) for a in args):
            allowed = ", ".join(repr(a) for a in args)
            raise ConfigError(f"{name}: {value!r} is not allowed; allowed values: {allowed}")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{name}: expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], v, f"{name}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(f"{name}: expected a list of {len(args)} values, got {len(value)}: {value!r}")
        return tuple(_coerce(a, v, f"{name}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{name}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{name}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads 1e-4 (no dot) as a string.
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{name}: expected a number, got {value!r}")
        value = float(value)
        if value != value or value in (float("inf"), float("-inf")):
            raise ConfigError(f"{name}: expected a finite number, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{name}: expected a string, got {value!r}")
        return value
    raise TypeError(f"unsupported config type {_type_name(tp)} for {name}")


def _check_range(value, lo, hi, lo_open: bool, name: str) -> None:
    if value is None or (lo is None and hi is None):
        return
    too_low = lo is not None and (value <= lo if lo_open else value < lo)
    too_high = hi is not None and value > hi
    if too_low or too_high:
        left = "(" if lo_open else "["
        lo_s = "-inf" if lo is None else repr(lo)
        hi_s = "inf" if hi is None else repr(hi)
        raise ConfigError(f"{name}: {value!r} is out of range; allowed: {left}{lo_s}, {hi_s}]")
