"""SMPL-X in JAX: named joint sets (`joint_names`), skinning math (`lbs`), model state and the jitted forward
pass (`model`), the license-free SMPL-X-format body (`synthetic_model`) and human Gaussians
(`human_gaussians`). Files are read and written only by `arthoi_jax.io.body_model_file`."""
