"""arthoi_jax command line.

  python run.py --config configs/synthetic/door.yaml [--set key=value ...] [--stage NAME] [--out DIR]
                [--resume | --overwrite]

Exit status 0 when done; 2 on an arthoi_jax error (a bad config or input, an existing run folder, or a diverged
optimization, whose last good state is then in <out>/<stage>.failed/last_good.npz), with the message on stderr.
"""

from __future__ import annotations

import argparse
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="YAML config file")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key, e.g. --set stage1.lr=1e-3 (repeatable)")
    parser.add_argument("--stage", default="all", help="run one stage only (default: every stage in order)")
    parser.add_argument("--out", default=None, help="run folder (default: out/<scene.name>)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--resume", action="store_true", help="keep finished stages in --out, run the rest")
    group.add_argument("--overwrite", action="store_true", help="replace results already in --out")
    args = parser.parse_args(argv)

    from arthoi_jax import pipeline
    from arthoi_jax.errors import ArthoiError

    try:
        pipeline.run(args.config, overrides=args.set, stage=args.stage, out=args.out,
                     resume=args.resume, overwrite=args.overwrite)
    except ArthoiError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
