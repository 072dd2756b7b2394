"""The SMPL-X body model as JAX pytrees: model state, parameters, and a jitted forward pass.

`BodyModel.from_arrays(arrays, ...)` builds the model from the arrays of an SMPL-X file (read them with
`arthoi_jax.io.body_model_file`), treating them exactly as `smplx.SMPLX` (0.1.28) does, except that it refuses
what smplx silently accepts: more betas or expression coefficients than the file holds, PCA hand components
beyond the file's, or pose arrays of the wrong shape.

`forward(model, params)` poses one body; `forward_sequence(model, params)` vmaps it over frames that share
`betas`. Pass the model to jitted functions as an argument (it is a pytree); closed over, its arrays become
constants that XLA folds at length. Outputs are in the model frame (SMPL-X files: y up) moved by `transl`;
joints are the set smplx returns (`joint_names.output_joint_names`): 55 skeleton joints, 21 vertex keypoints,
51 face landmarks and, with `use_face_contour`, 17 contour landmarks.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from arthoi_jax.body import joint_names as jn
from arthoi_jax.body import lbs
from arthoi_jax.errors import InputError, ModelFileError

# smplx reads the shape and expression spaces from one `shapedirs` array: a v1.1 file holds 300 shape then 100
# expression components; an older one (fewer than 400 columns) 10 shape then 10 expression components.
SHAPE_SPACE_DIM, EXPRESSION_SPACE_DIM = 300, 100


@struct.dataclass
class BodyModel:
    """An SMPL-X model ready for the forward pass (V vertices, F faces, J = 55 joints)."""

    v_template: jnp.ndarray  # [V, 3] metres
    shapedirs: jnp.ndarray  # [V, 3, B] metres per unit beta
    exprdirs: jnp.ndarray  # [V, 3, E]
    posedirs: jnp.ndarray  # [9 (J - 1), 3 V] smplx's layout
    J_template: jnp.ndarray  # [J, 3] J_regressor @ v_template
    J_shapedirs: jnp.ndarray  # [J, 3, B + E] J_regressor applied to shape then expression directions
    weights: jnp.ndarray  # [V, J] skinning weights
    faces: jnp.ndarray  # [F, 3] int32
    hand_components: jnp.ndarray  # [2, C, 45] (left, right) PCA rows in use; C = 0 without PCA
    hand_mean: jnp.ndarray  # [2, 45] added to the hand poses (zeros with flat_hand_mean)
    lmk_faces_idx: jnp.ndarray  # [51] int32
    lmk_bary_coords: jnp.ndarray  # [51, 3]
    dynamic_lmk_faces_idx: jnp.ndarray  # [79, 17] int32 (empty [0, 17] without the face contour)
    dynamic_lmk_bary_coords: jnp.ndarray  # [79, 17, 3]
    parents: tuple = struct.field(pytree_node=False, default=jn.PARENTS)
    use_pca: bool = struct.field(pytree_node=False, default=False)
    flat_hand_mean: bool = struct.field(pytree_node=False, default=True)
    use_face_contour: bool = struct.field(pytree_node=False, default=False)
    gender: str = struct.field(pytree_node=False, default="neutral")

    @property
    def num_betas(self) -> int:
        return self.shapedirs.shape[-1]

    @property
    def num_expression(self) -> int:
        return self.exprdirs.shape[-1]

    @property
    def num_pca_comps(self) -> int:
        return self.hand_components.shape[1]

    @property
    def num_vertices(self) -> int:
        return self.v_template.shape[0]

    @property
    def hand_pose_shape(self) -> tuple[int, ...]:
        return (self.num_pca_comps,) if self.use_pca else (jn.NUM_HAND_JOINTS, 3)

    @staticmethod
    def from_arrays(
        arrays: Mapping[str, np.ndarray],
        *,
        num_betas: int = 10,
        num_expression: int = 10,
        use_pca: bool = False,
        num_pca_comps: int = 6,
        flat_hand_mean: bool = True,
        use_face_contour: bool = False,
        gender: str = "neutral",
        source: str = "model arrays",
    ) -> BodyModel:
        """Builds the model from an SMPL-X file's arrays (official key names; see `REQUIRED_KEYS`).

        `source` names the file in error messages. PCA hands only with `use_pca=True` (smplx's default is PCA
        with 6 components; ours is the full 15 x 3 axis-angle per hand).

        Raises:
          ModelFileError: a key is missing, an array has the wrong shape, or more betas / expression
            coefficients / PCA components are asked for than the file holds.
        """
        missing = [k for k in REQUIRED_KEYS if k not in arrays]
        if use_face_contour:
            missing += [k for k in CONTOUR_KEYS if k not in arrays]
        if missing:
            raise ModelFileError(f"{source}: missing key(s) {', '.join(missing)}; an SMPL-X model file has "
                                 f"{', '.join(REQUIRED_KEYS)}")  # fmt: skip
        a = {k: np.asarray(arrays[k]) for k in arrays}
        V = _expect(a, "v_template", (None, 3), source)[0]
        J = jn.NUM_JOINTS
        _expect(a, "f", (None, 3), source)
        _expect(a, "weights", (V, J), source)
        _expect(a, "J_regressor", (J, V), source)
        _expect(a, "kintree_table", (2, J), source)
        _expect(a, "posedirs", (V, 3, 9 * (J - 1)), source)
        shapedirs = a["shapedirs"] if a["shapedirs"].ndim == 3 else a["shapedirs"][:, :, None]
        K = _expect({"shapedirs": shapedirs}, "shapedirs", (V, 3, None), source)[2]
        for side in "lr":
            _expect(a, f"hands_components{side}", (None, 45), source)
            _expect(a, f"hands_mean{side}", (45,), source)
        if V <= max(jn.EXTRA_VERTEX_IDS):
            raise ModelFileError(f"{source}: {V} vertices, but SMPL-X keypoints are read at vertex ids up to "
                                 f"{max(jn.EXTRA_VERTEX_IDS)}; is this an SMPL or SMPL+H file?")

        # smplx's split of shapedirs (body_models.py: SMPL.__init__ and SMPLX.__init__).
        if K < SHAPE_SPACE_DIM + EXPRESSION_SPACE_DIM:
            n_shape, e0, n_expr = min(10, K), 10, max(0, min(10, K - 10))
        else:
            n_shape, e0, n_expr = SHAPE_SPACE_DIM, SHAPE_SPACE_DIM, EXPRESSION_SPACE_DIM
        if num_betas > n_shape:
            raise ModelFileError(f"{source}: num_betas={num_betas} requested, but the file has {n_shape} shape "
                                 f"components (shapedirs {list(shapedirs.shape)}); use num_betas <= {n_shape}")
        if num_expression > n_expr:
            raise ModelFileError(f"{source}: num_expression={num_expression} requested, but the file has {n_expr} "
                                 f"expression components (shapedirs {list(shapedirs.shape)})")
        n_comps_file = a["hands_componentsl"].shape[0]
        if use_pca:
            if not 1 <= num_pca_comps <= n_comps_file:
                raise ModelFileError(f"{source}: num_pca_comps={num_pca_comps}, but the file has {n_comps_file} "
                                     f"hand PCA components; use 1..{n_comps_file}")
            if num_pca_comps == 45:
                warnings.warn("use_pca with num_pca_comps=45: hand poses are still PCA coefficients (a rotated "
                              "basis), not axis-angles; set use_pca=False for the full 15 x 3 hand pose",
                              stacklevel=2)  # fmt: skip
        parents = tuple(int(p) for p in a["kintree_table"][0].astype(np.int64))
        parents = (-1,) + parents[1:]
        bad = [j for j in range(1, J) if not 0 <= parents[j] < j]
        if bad:
            raise ModelFileError(f"{source}: kintree_table: joint {bad[0]} has parent {parents[bad[0]]}; expected "
                                 f"a parent index below the joint's own")
        if use_face_contour:
            _expect(a, "dynamic_lmk_faces_idx", (jn.NUM_CONTOUR_YAWS, None), source)

        f32 = np.float32
        sd = shapedirs[:, :, :num_betas].astype(f32)
        ed = shapedirs[:, :, e0 : e0 + num_expression].astype(f32)
        jreg = a["J_regressor"].astype(f32)
        comps = np.stack([a["hands_componentsl"][:num_pca_comps], a["hands_componentsr"][:num_pca_comps]])
        if not use_pca:
            comps = comps[:, :0]
        mean = np.stack([a["hands_meanl"], a["hands_meanr"]])
        if flat_hand_mean:
            mean = np.zeros_like(mean)
        P = a["posedirs"].shape[-1]
        if use_face_contour:
            dyn_f = a["dynamic_lmk_faces_idx"].astype(np.int32)
            dyn_b = a["dynamic_lmk_bary_coords"].astype(f32)
        else:
            dyn_f, dyn_b = np.zeros((0, 17), np.int32), np.zeros((0, 17, 3), f32)
        return BodyModel(
            v_template=jnp.asarray(a["v_template"], f32),
            shapedirs=jnp.asarray(sd),
            exprdirs=jnp.asarray(ed),
            posedirs=jnp.asarray(np.reshape(a["posedirs"], (-1, P)).T.astype(f32)),
            J_template=jnp.asarray(jreg @ a["v_template"].astype(f32)),
            J_shapedirs=jnp.asarray(np.einsum("jv,vkl->jkl", jreg, np.concatenate([sd, ed], axis=2))),
            weights=jnp.asarray(a["weights"], f32),
            faces=jnp.asarray(a["f"].astype(np.int64), jnp.int32),
            hand_components=jnp.asarray(comps, f32),
            hand_mean=jnp.asarray(mean, f32),
            lmk_faces_idx=jnp.asarray(a["lmk_faces_idx"].astype(np.int64), jnp.int32),
            lmk_bary_coords=jnp.asarray(a["lmk_bary_coords"], f32),
            dynamic_lmk_faces_idx=jnp.asarray(dyn_f),
            dynamic_lmk_bary_coords=jnp.asarray(dyn_b),
            parents=parents,
            use_pca=use_pca,
            flat_hand_mean=flat_hand_mean,
            use_face_contour=use_face_contour,
            gender=gender,
        )


REQUIRED_KEYS = ("v_template", "f", "weights", "J_regressor", "kintree_table", "shapedirs", "posedirs",
                 "hands_componentsl", "hands_componentsr", "hands_meanl", "hands_meanr", "lmk_faces_idx",
                 "lmk_bary_coords")  # fmt: skip
CONTOUR_KEYS = ("dynamic_lmk_faces_idx", "dynamic_lmk_bary_coords")


def _expect(a: dict, key: str, shape: tuple, source: str) -> tuple[int, ...]:
    x = a[key]
    if x.ndim != len(shape) or any(s is not None and s != d for s, d in zip(shape, x.shape)):
        want = "[" + ", ".join("*" if s is None else str(s) for s in shape) + "]"
        raise ModelFileError(f"{source}: {key} has shape {list(x.shape)}, expected {want}")
    return x.shape


@struct.dataclass
class BodyParams:
    """SMPL-X parameters of one body (add a leading [T] axis for a sequence; see `forward_sequence`).

    Rotations are axis-angle in radians; hand poses are [15, 3] axis-angles, or [C] PCA coefficients when the
    model uses PCA.
    """

    betas: jnp.ndarray  # [B]
    expression: jnp.ndarray  # [E]
    global_orient: jnp.ndarray  # [3] rotation about the rest-pose pelvis J0
    body_pose: jnp.ndarray  # [21, 3]
    jaw_pose: jnp.ndarray  # [3]
    leye_pose: jnp.ndarray  # [3]
    reye_pose: jnp.ndarray  # [3]
    left_hand_pose: jnp.ndarray  # [15, 3] or [C]
    right_hand_pose: jnp.ndarray  # [15, 3] or [C]
    transl: jnp.ndarray  # [3] metres, added after posing

    @staticmethod
    def zeros(model: BodyModel, num_frames: int | None = None) -> BodyParams:
        """The rest pose; with `num_frames`, every field but betas gets a leading [T] axis."""
        lead = () if num_frames is None else (num_frames,)
        z = lambda *s: jnp.zeros(lead + s, jnp.float32)
        return BodyParams(
            betas=jnp.zeros((model.num_betas,), jnp.float32), expression=z(model.num_expression),
            global_orient=z(3), body_pose=z(jn.NUM_BODY_JOINTS, 3), jaw_pose=z(3), leye_pose=z(3), reye_pose=z(3),
            left_hand_pose=z(*model.hand_pose_shape), right_hand_pose=z(*model.hand_pose_shape), transl=z(3))  # fmt: skip


@struct.dataclass
class BodyOutput:
    vertices: jnp.ndarray  # [V, 3] metres
    joints: jnp.ndarray  # [127 or 144, 3] metres, `joint_names.output_joint_names` order


def _expected_shapes(model: BodyModel) -> dict[str, tuple[int, ...]]:
    return {
        "betas": (model.num_betas,), "expression": (model.num_expression,), "global_orient": (3,),
        "body_pose": (jn.NUM_BODY_JOINTS, 3), "jaw_pose": (3,), "leye_pose": (3,), "reye_pose": (3,),
        "left_hand_pose": model.hand_pose_shape, "right_hand_pose": model.hand_pose_shape, "transl": (3,),
    }  # fmt: skip


def check_param_shapes(model: BodyModel, params: BodyParams, lead: tuple[int, ...] = ()) -> None:
    """Raises InputError naming the first field whose shape is not [*lead, *expected] (betas: no lead)."""
    for name, shape in _expected_shapes(model).items():
        want = shape if name == "betas" else lead + shape
        got = tuple(jnp.shape(getattr(params, name)))
        if got != want:
            hint = ""
            if name.endswith("pose") or name == "global_orient":
                hint = " (axis-angle in radians; rotation matrices are not accepted)"
            if name.endswith("hand_pose"):
                hint = (f" (PCA coefficients: the model uses {model.num_pca_comps} components)" if model.use_pca
                        else " (15 joints x 3 axis-angle; PCA only with use_pca=True)")
            if name == "betas" and len(got) == 1 and got[0] > model.num_betas:
                hint = f" (the model was built with num_betas={model.num_betas}; extra betas are not dropped)"
            raise InputError(f"{name}: expected shape {list(want)}{hint}, got {list(got)}")


def validate_params(model: BodyModel, params: BodyParams, lead: tuple[int, ...] = ()) -> None:
    """Host-side check of shapes and finiteness (run before optimizing; the jitted forward cannot raise)."""
    check_param_shapes(model, params, lead)
    for name in _expected_shapes(model):
        x = np.asarray(getattr(params, name))
        if not np.all(np.isfinite(x)):
            bad = tuple(int(i) for i in np.argwhere(~np.isfinite(x))[0])
            raise InputError(f"{name}: non-finite value {x[bad]} at index {bad}")


def full_pose(model: BodyModel, params: BodyParams) -> jnp.ndarray:
    """[55, 3] axis-angle per joint, smplx order, hand means added (smplx's `full_pose`)."""
    hands = []
    for side, pose in enumerate((params.left_hand_pose, params.right_hand_pose)):
        aa = pose @ model.hand_components[side] if model.use_pca else pose.reshape(45)
        hands.append((aa + model.hand_mean[side]).reshape(jn.NUM_HAND_JOINTS, 3))
    return jnp.concatenate([
        params.global_orient[None], params.body_pose, params.jaw_pose[None], params.leye_pose[None],
        params.reye_pose[None], hands[0], hands[1]])  # fmt: skip


def rest_joints(model: BodyModel, betas: jnp.ndarray, expression: jnp.ndarray) -> jnp.ndarray:
    """[55, 3] joints of the shaped body in the rest pose (model frame, before transl)."""
    return model.J_template + model.J_shapedirs @ jnp.concatenate([betas, expression])


def joints_and_vertices(model: BodyModel, params: BodyParams, idx) -> tuple[jnp.ndarray, jnp.ndarray]:
    """One frame: posed skeleton joints [55, 3] and the vertices idx [K] -> [K, 3], world (transl added): the
    full forward (shape, expression and pose blend shapes, skinning) restricted to those vertices, cheaper than
    `forward` when K is small (landmark vertices, a hand's vertices)."""
    rot = lbs.rodrigues(full_pose(model, params))
    joints, rel = lbs.rigid_transforms(rot, rest_joints(model, params.betas, params.expression), model.parents)
    v = model.v_template[idx] + model.shapedirs[idx] @ params.betas + model.exprdirs[idx] @ params.expression
    posedirs = model.posedirs.reshape(model.posedirs.shape[0], -1, 3)[:, idx]  # [9 (J - 1), K, 3]
    v = v + jnp.einsum("p,pkc->kc", (rot[1:] - jnp.eye(3)).reshape(-1), posedirs)
    return joints + params.transl, lbs.skin(v, model.weights[idx], rel) + params.transl


def _forward(model: BodyModel, params: BodyParams) -> BodyOutput:
    check_param_shapes(model, params)
    coeffs = jnp.concatenate([params.betas, params.expression])
    v_shaped = model.v_template + model.shapedirs @ params.betas + model.exprdirs @ params.expression
    J = model.J_template + model.J_shapedirs @ coeffs
    pose = full_pose(model, params)
    rot = lbs.rodrigues(pose)  # [55, 3, 3]
    feature = (rot[1:] - jnp.eye(3)).reshape(-1)
    v_posed = v_shaped + (feature @ model.posedirs).reshape(-1, 3)
    posed_joints, rel = lbs.rigid_transforms(rot, J, model.parents)
    verts = lbs.skin(v_posed, model.weights, rel)
    extra = verts[np.asarray(jn.EXTRA_VERTEX_IDS)]
    lmk = lbs.barycentric_points(verts, model.faces, model.lmk_faces_idx, model.lmk_bary_coords)
    joints = [posed_joints, extra, lmk]
    if model.use_face_contour:
        row = _contour_row(rot, model.parents)
        joints.append(lbs.barycentric_points(verts, model.faces, model.dynamic_lmk_faces_idx[row],
                                             model.dynamic_lmk_bary_coords[row]))  # fmt: skip
    joints = jnp.concatenate(joints)
    return BodyOutput(vertices=verts + params.transl, joints=joints + params.transl)


def _contour_row(rot: jnp.ndarray, parents: tuple) -> jnp.ndarray:
    """Row of the dynamic-contour table for the head's yaw (smplx's find_dynamic_lmk_idx_and_bcoords)."""
    rot = jax.lax.stop_gradient(rot)
    rel = jnp.eye(3, dtype=rot.dtype)
    j = jn.NECK
    while j != -1:
        rel = rot[j] @ rel
        j = parents[j]
    sy = jnp.sqrt(rel[0, 0] ** 2 + rel[1, 0] ** 2)
    yaw = jnp.round(jnp.minimum(-jnp.arctan2(-rel[2, 0], sy) * 180.0 / jnp.pi, 39.0)).astype(jnp.int32)
    return jnp.where(yaw < 0, jnp.where(yaw < -39, 78, 39 - yaw), yaw)


forward = jax.jit(_forward)
forward.__doc__ = """Poses one body: (BodyModel, BodyParams) -> BodyOutput (vertices [V, 3], joints [127|144, 3]).

Raises InputError (at trace time) when a parameter's shape is not the model's; see `check_param_shapes`."""


@jax.jit
def forward_sequence(model: BodyModel, params: BodyParams) -> BodyOutput:
    """Poses T frames sharing one shape: betas [B]; every other field [T, ...] -> vertices [T, V, 3], joints
    [T, 127|144, 3]."""
    if params.global_orient.ndim != 2:
        raise InputError(f"global_orient: forward_sequence expects a leading frame axis, [T, 3], got "
                         f"{list(params.global_orient.shape)}")
    check_param_shapes(model, params, params.global_orient.shape[:1])
    axes = BodyParams(*([None] + [0] * 9))
    return jax.vmap(_forward, in_axes=(None, axes))(model, params)


def repose(model: BodyModel, params: BodyParams, R: jnp.ndarray, t: jnp.ndarray) -> BodyParams:
    """Parameters of the same body moved by the rigid transform x -> R x + t (one frame, or [T] frames).

    `global_orient` rotates about the shaped rest pelvis J0 and `transl` is added afterwards, so
    global_orient' = R global_orient and transl' = R (transl + J0) + t - J0 (PITFALLS item 4).
    R: [3, 3]; t: [3].
    """
    expr = params.expression
    coeffs = jnp.concatenate([jnp.broadcast_to(params.betas, expr.shape[:-1] + params.betas.shape), expr], -1)
    J0 = model.J_template[0] + coeffs @ model.J_shapedirs[0].T  # [..., 3] per frame (expression moves J0 too)
    go = lbs.rotation_to_axis_angle(R @ lbs.rodrigues(params.global_orient))
    transl = (params.transl + J0) @ R.T + t - J0
    return params.replace(global_orient=go, transl=transl)


def params_from_smplx(model: BodyModel, p) -> BodyParams:
    """`BodyParams` with a leading [T] axis from the bundle's `SmplxParams` (eyes at rest).

    Fewer betas or expression coefficients than the model uses are padded with zeros; more are an error, as
    is a hand-mean convention (`flat_hand_mean`) or hand representation (PCA) the model does not share.
    """
    if model.use_pca:
        raise InputError("SmplxParams hold full 15 x 3 hand poses; build the model with use_pca=False to use them")
    if bool(p.flat_hand_mean) != model.flat_hand_mean:
        raise InputError(f"SmplxParams.flat_hand_mean={p.flat_hand_mean}, but the model was built with "
                         f"flat_hand_mean={model.flat_hand_mean}; hand poses would be offset by the hand mean")
    T = p.global_orient.shape[0]

    def pad(name, x, n):
        if x.shape[-1] > n:
            raise InputError(f"{name}: {x.shape[-1]} coefficients, but the model uses {n}")
        return jnp.asarray(np.concatenate([x, np.zeros(x.shape[:-1] + (n - x.shape[-1],), x.dtype)], -1),
                           jnp.float32)  # fmt: skip

    z = jnp.zeros((T, 3), jnp.float32)
    f = lambda x: jnp.asarray(x, jnp.float32)
    return BodyParams(
        betas=pad("betas", np.asarray(p.betas), model.num_betas),
        expression=pad("expression", np.asarray(p.expression), model.num_expression),
        global_orient=f(p.global_orient), body_pose=f(p.body_pose), jaw_pose=f(p.jaw_pose), leye_pose=z,
        reye_pose=z, left_hand_pose=f(p.left_hand_pose), right_hand_pose=f(p.right_hand_pose),
        transl=f(p.transl))  # fmt: skip
