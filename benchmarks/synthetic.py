"""Generation time and ground-truth sanity of every synthetic scene config.

  python benchmarks/synthetic.py [--configs 'configs/synthetic/*.yaml'] [--set key=value ...] [--json PATH]

Per config: wall and CPU seconds of `generate_scene` (the issue's target: under 30 s at the default size on a
2-core machine), the number of GT tracks, the share of (frame, track) pairs visible, and the share of visible
tracks whose pixel shows the part they were sampled on (expected >= 0.99).
"""

from __future__ import annotations

import argparse
import glob
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from arthoi_jax.config import load_config
from arthoi_jax.synthetic.scene import generate_scene


def measure(config_path: str, overrides) -> dict:
    cfg = load_config(config_path, overrides).synthetic
    wall, cpu = time.perf_counter(), time.process_time()
    b = generate_scene(cfg)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    g = b.gt
    t, m = np.nonzero(g.visibility)
    col, row = np.floor(g.tracks[t, m, 0]).astype(int), np.floor(g.tracks[t, m, 1]).astype(int)
    return {
        "config": config_path, "object": cfg.object, "texture": cfg.texture,
        "size": f"{cfg.width}x{cfg.height}x{cfg.num_frames}", "wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
        "tracks": int(g.tracks.shape[1]), "moving_tracks": int((g.track_part >= 2).sum()),
        "visible": round(float(g.visibility.mean()), 4),
        "on_own_part": round(float((g.part_ids[t, row, col] == g.track_part[m]).mean()), 5),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", default="configs/synthetic/*.yaml")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--json", default="out/benchmarks/synthetic.json")
    args = parser.parse_args(argv)
    rows = [measure(p, args.set) for p in sorted(glob.glob(args.configs))]
    cols = ("config", "size", "wall_s", "cpu_s", "tracks", "moving_tracks", "visible", "on_own_part")
    widths = [max(len(c), *(len(str(r[c])) for r in rows)) for c in cols]
    print("  ".join(c.ljust(w) for c, w in zip(cols, widths)))
    for r in rows:
        print("  ".join(str(r[c]).ljust(w) for c, w in zip(cols, widths)))
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"rows": rows}, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
