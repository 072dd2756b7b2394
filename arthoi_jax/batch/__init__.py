"""Many scenes at once: size buckets with validity masks (`padding`), Stage I and Stage II of a bucket as one
jitted, vmapped program each (`stage1_batch` around stage1.optimize_scenes, `stage2_batch`), the scene axis
sharded over devices and hosts (`sharding`), orbax checkpoints (`checkpoint`) and the batch run itself (`runner`:
`python run.py --config configs/batch/synthetic_suite.yaml`, `configs/batch/hoi_suite.yaml`)."""
