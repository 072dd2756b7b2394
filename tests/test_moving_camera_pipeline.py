"""The rigid-object route of the pipeline (issue 10): on a video scene whose object has no moving part, segment
writes rigid.json with the evidence, Stage I keeps the object static, and evaluate reports it."""

import dataclasses
import json

import pytest
import yaml

from arthoi_jax import pipeline
from arthoi_jax.config import SyntheticConfig
from arthoi_jax.errors import NoMovingPartError
from arthoi_jax.io.bundle import save_bundle
from arthoi_jax.io.outputs import write_json
from tests.moving_camera_scene import moving_camera_bundle, orbit

RIGID = SyntheticConfig(object="door", width=128, height=96, num_frames=5, num_tracks=300, max_angle_deg=0.0)


def _run(tmp_path, source: str):
    b = moving_camera_bundle(RIGID, orbit(RIGID.num_frames))
    b = dataclasses.replace(b, gt=None)  # as from a real video
    run = tmp_path / "run"
    save_bundle(b, run / "preprocess" / "bundle")
    write_json(run / "preprocess" / "summary.json", {"frames": 5, "frames_with_body": 4,
                                                      "camera_motion": {"max_rotation_deg": 3.2}})
    scene = {"name": "rigid", "source": source}
    scene.update({"video": "unused.mp4"} if source == "video" else {"bundle": str(run / "preprocess" / "bundle")})
    cfg = {"scene": scene, "segmentation": {"gaussian_stride": 4}, "output": {"progress": False, "video": False}}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    for stage in ("segment", "stage1", "evaluate"):
        pipeline.run(tmp_path / "c.yaml", stage=stage, out=run)
    return run


def test_rigid_object_on_a_video_is_reported_and_kept_static(tmp_path):
    run = _run(tmp_path, "video")
    rigid = json.loads((run / "segment/rigid.json").read_text())
    assert rigid["rigid"] and "no moving part found" in rigid["reason"]
    ev = rigid["evidence"]
    assert ev["camera_compensated"] and ev["raw_motion_px"]["median"] > 10 and ev["residual_motion_px"]["p90"] < 2
    frames = json.loads((run / "stage1/transforms.json").read_text())["frames"]
    assert len(frames) == 5 and all(f["parts"] == [] for f in frames)
    assert json.loads((run / "stage1/joints.json").read_text())["parts"] == []
    m = json.loads((run / "evaluate/metrics.json").read_text())
    assert m["num_parts"] == 0 and m["rigid"]["evidence"] == ev
    assert m["video"] == {"frames": 5, "frames_with_body": 4, "camera_motion": {"max_rotation_deg": 3.2}}


def test_rigid_object_in_a_bundle_scene_is_still_an_error(tmp_path):
    with pytest.raises(NoMovingPartError, match="no moving part found"):
        _run(tmp_path, "bundle")
