"""Many scenes at once: size buckets with validity masks (`padding`), Stage I of a bucket as one jitted, vmapped
program (`stage1_batch`), the scene axis sharded over devices and hosts (`sharding`), orbax checkpoints
(`checkpoint`) and the batch run itself (`runner`: `python run.py --config configs/batch/synthetic_suite.yaml`)."""
