"""run.py stages segment -> stage1 -> evaluate on a tiny saved bundle: files written and metrics against GT."""

import json

import imageio.v3 as iio
import numpy as np
import yaml

from arthoi_jax import pipeline
from arthoi_jax.io.bundle import save_bundle
from tests.stage1_scene import make_scene


def test_segment_stage1_evaluate_write_transforms_joints_metrics_plot_and_video(tmp_path):
    b = make_scene("door", 96, 72, 5, max_value=np.deg2rad(35.0))
    save_bundle(b, tmp_path / "bundle")
    cfg = {"scene": {"name": "tiny", "source": "bundle", "bundle": str(tmp_path / "bundle")},
           "segmentation": {"gaussian_stride": 3, "ambiguity_px": 0.25},
           "stage1": {"iters_per_frame": 10, "steps_per_chunk": 5, "render_downsample": 3},
           "output": {"progress": False}}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    run = pipeline.run(tmp_path / "c.yaml", out=tmp_path / "run")
    transforms = json.loads((run / "stage1/transforms.json").read_text())
    assert len(transforms["frames"]) == 5 and len(transforms["frames"][3]["parts"]) == 1
    np.testing.assert_allclose(transforms["frames"][0]["parts"][0], np.eye(4))
    joints = json.loads((run / "stage1/joints.json").read_text())["parts"]
    assert joints[0]["type"] == "revolute" and len(joints[0]["values"]) == 5
    m = json.loads((run / "evaluate/metrics.json").read_text())
    assert m["revolute_rotation_error_deg"]["max"] < 1.0
    assert m["axis_error_deg_max"] < 2.0 and m["segmentation_iou_mean"] > 0.8
    video = iio.imread(run / "stage1/rerender.mp4")
    assert video.shape == (5, 72, 192, 3)  # input | re-render
    assert video[:, :, 96:].mean() > 5  # the re-rendered object is not black
    assert iio.imread(run / "evaluate/joint_values.png").ndim == 3
    assert iio.imread(run / "segment/masks.png").ndim == 3
