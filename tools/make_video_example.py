"""Writes the small input `configs/video_example.yaml` runs on: a synthetic door scene as an mp4, its frame-0
object mask as a PNG and its frame-0 depth as .npy (what a user with a video, a mask and a depth map has).

  python tools/make_video_example.py [--out out/video_example]
  python run.py --config configs/video_example.yaml --stage preprocess
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from arthoi_jax.config import SyntheticConfig
from arthoi_jax.io import media
from arthoi_jax.io.outputs import write_atomic
from arthoi_jax.synthetic.scene import generate_scene


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="out/video_example")
    args = parser.parse_args(argv)
    out = Path(args.out)
    b = generate_scene(SyntheticConfig(object="door", width=256, height=192, num_frames=24))
    media.write_video(out / "door.mp4", b.frames, b.fps)
    media.write_png(out / "door_mask0.png", b.object_masks[0].astype(np.uint8) * 255)
    buf = io.BytesIO()
    np.save(buf, b.depth)
    write_atomic(out / "door_depth0.npy", buf.getvalue())
    write_atomic(out / "README.txt", (f"Synthetic door, {b.num_frames} frames at {b.fps} fps, K fx={b.K[0, 0]:.3f}.\n"
                                      "Made by tools/make_video_example.py; input of configs/video_example.yaml.\n"
                                      ).encode())
    print(f"wrote {out}/door.mp4, door_mask0.png, door_depth0.npy")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
