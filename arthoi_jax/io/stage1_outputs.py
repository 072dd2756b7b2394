"""Files of the segment, stage1 and evaluate stages: segmentation arrays, part transforms and joints (JSON),
the joint-value plot (PNG) and the re-rendered object beside the input (mp4). All writes are atomic. Every
Stage I export records its conventions (frame, units, fps, up axis; io.outputs.conventions)."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np

from arthoi_jax.articulation import JointFit
from arthoi_jax.errors import BundleError
from arthoi_jax.io import media
from arthoi_jax.io.outputs import conventions, write_atomic, write_json
from arthoi_jax.render.types import Gaussians
from arthoi_jax.segmentation import PartSegmentation
from arthoi_jax.stage1 import TERMS, Stage1Result

_SEG_FIELDS = ("track_labels", "track_points", "track_motion_px", "quasi_static", "part_masks", "gaussian_uv",
               "weights", "binding_pairs")
_G_FIELDS = ("means", "quats", "log_scales", "opacity_logits", "colors")


def _save_npz(path: Path, arrays: dict) -> None:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    write_atomic(path, buf.getvalue())


def _load_npz(path: Path, what: str) -> dict:
    if not path.is_file():
        raise BundleError(f"{path}: missing; run the '{what}' stage first")
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:  # all mean a corrupt file
        raise BundleError(f"{path}: unreadable ({type(e).__name__}: {e})") from None


def save_segmentation(folder: Path, seg: PartSegmentation) -> None:
    arrays = {k: getattr(seg, k) for k in _SEG_FIELDS}
    arrays.update({f"gaussians.{k}": np.asarray(getattr(seg.gaussians, k)) for k in _G_FIELDS})
    _save_npz(Path(folder) / "segmentation.npz", arrays)


def load_segmentation(folder: Path) -> PartSegmentation:
    a = _load_npz(Path(folder) / "segmentation.npz", "segment")
    try:
        g = Gaussians(**{k: a[f"gaussians.{k}"] for k in _G_FIELDS})
        return PartSegmentation(gaussians=g, **{k: a[k] for k in _SEG_FIELDS})
    except KeyError as e:
        raise BundleError(f"{folder}/segmentation.npz: missing array {e.args[0]}") from None


POSE = "poses[t][p] (4x4) maps part p's points at frame 0 to frame t, both in the world frame: x_t = R x_0 + t"


def save_stage1(folder: Path, result: Stage1Result, fps: float, up=None) -> None:
    """result.npz (every array) with its sidecar result.json, transforms.json (per-frame 4x4 part poses) and
    joints.json (the fitted joint per part); each JSON carries the conventions block (io.outputs.conventions:
    world = camera 0, OpenCV, world-to-camera, metres, radians, fps, up axis `up` [3] or None: unknown)."""
    folder = Path(folder)
    T, P = result.poses.shape[:2]
    conv = {**conventions(fps, up), "num_frames": int(T), "num_parts": int(P)}
    _save_npz(folder / "result.npz", {"poses": result.poses, "init_poses": result.init_poses,
                                      "pnp_poses": result.pnp_poses, "iterations": result.iterations,
                                      "loss": result.loss, "terms": result.terms})
    write_json(folder / "result.json", {**conv, "pose": POSE, "arrays": {
        "poses": "[T, P, 4, 4] optimized part poses", "init_poses": "[T, P, 4, 4] closed-form initialization",
        "pnp_poses": "[T, P, 4, 4] per-frame RANSAC PnP poses of the tracks",
        "iterations": "[T] Adam steps per frame", "loss": "[T] final total loss per frame",
        "terms": f"[T, {len(TERMS)}] final weighted loss terms per frame, order {list(TERMS)}"}})
    write_json(folder / "transforms.json", {
        **conv, "pose": POSE,
        "frames": [{"t": t, "time_s": t / fps, "iterations": int(result.iterations[t]), "loss": float(result.loss[t]),
                    "loss_terms": dict(zip(TERMS, result.terms[t].tolist())),
                    "parts": [result.poses[t, p].tolist() for p in range(P)]} for t in range(T)],
    })
    write_json(folder / "joints.json", {
        **conv, "joint": "revolute: rotation by values[t] (radians, right hand) about the unit axis through pivot "
                         "(metres); prismatic: translation by values[t] (metres) along the unit axis; axis and pivot "
                         "in the world frame; residual_m: RMS distance of the part's points to the optimized poses",
        "parts": [j.to_json() for j in result.joints]})


def load_transforms(folder: Path) -> tuple[np.ndarray, dict]:
    """transforms.json of a stage1 folder -> (poses [T, P, 4, 4], its conventions block)."""
    path = Path(folder) / "transforms.json"
    try:
        d = json.loads(path.read_text())
        poses = np.array([f["parts"] for f in d["frames"]], np.float64).reshape(len(d["frames"]), d["num_parts"], 4, 4)
        conv = {k: d[k] for k in ("frame", "units", "fps", "up_axis", "up_axis_source", "pose")}
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise BundleError(f"{path}: unreadable ({type(e).__name__}: {e})") from None
    return poses, conv


def load_stage1(folder: Path) -> tuple[np.ndarray, list[JointFit]]:
    """-> (poses [T, P, 4, 4], joints) from a stage1 folder."""
    a = _load_npz(Path(folder) / "result.npz", "stage1")
    path = Path(folder) / "joints.json"
    try:
        parts = json.loads(path.read_text())["parts"]
        joints = [JointFit(j["type"], np.array(j["axis"]), np.array(j["pivot"]), np.array(j["values"]),
                           float(j["residual_m"])) for j in parts]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise BundleError(f"{path}: unreadable ({type(e).__name__}: {e})") from None
    return a["poses"], joints


def write_joint_plot(path: Path, fps: float, estimated: list[JointFit], gt_values: list[np.ndarray | None],
                     gt_types: list[str | None]) -> None:
    """Joint value over time per part (degrees or centimetres), estimated (solid) against GT (dashed) if known."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(estimated), figsize=(5 * len(estimated), 3.5), squeeze=False)
    for ax, j, gv, gtype in zip(axes[0], estimated, gt_values, gt_types):
        scale, unit = (np.rad2deg(1.0), "deg") if j.joint_type == "revolute" else (100.0, "cm")
        t = np.arange(len(j.values)) / fps
        ax.plot(t, j.values * scale, label=f"estimated ({j.joint_type})")
        if gv is not None:
            gscale = np.rad2deg(1.0) if gtype == "revolute" else 100.0
            # A joint's sign depends on its axis direction: show GT with the sign of the estimate.
            sign = np.sign(np.dot(j.values, gv)) or 1.0
            ax.plot(t, sign * gv * gscale, "--", label=f"ground truth ({gtype})")
        ax.set_xlabel("time (s)")
        ax.set_ylabel(f"joint value ({unit})")
        ax.grid(alpha=0.3)
        ax.legend()
    media.write_figure(path, fig)


def write_side_by_side(path: Path, left: np.ndarray, right: np.ndarray, fps: float) -> None:
    """[T, H, W, 3] uint8 twice -> one mp4 with the two side by side."""
    media.write_video(path, np.concatenate([left, right], axis=2), fps)


def mask_overlay(frames: np.ndarray, part_masks: np.ndarray) -> np.ndarray:
    """[T, H, W, 3] uint8 frames with each part's mask [T, P, H, W] tinted in its own colour."""
    colours = np.array([[255, 40, 40], [40, 120, 255], [40, 220, 40], [255, 200, 0]], np.float32)
    out = frames.astype(np.float32)
    for p in range(part_masks.shape[1]):
        m = part_masks[:, p, ..., None]
        out = np.where(m, 0.5 * out + 0.5 * colours[p % len(colours)], out)
    return out.round().astype(np.uint8)
