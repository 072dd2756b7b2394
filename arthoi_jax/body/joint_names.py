"""Named joint sets of SMPL-X, in the order `smplx` (0.1.28) returns them.

* `SKELETON` — the 55 kinematic joints (`kintree_table` order); `PARENTS[j]` is joint j's parent (-1 at the root).
* `EXTRA_VERTEX_JOINTS` — 21 joints `smplx` reads off fixed vertices (`EXTRA_VERTEX_IDS`): face keypoints, feet,
  finger tips. They follow the skeleton in the output.
* `FACE_LANDMARKS` — 51 static face landmarks (barycentric points given by the file's `lmk_faces_idx` /
  `lmk_bary_coords`), then, with `use_face_contour`, `FACE_CONTOUR` (17 landmarks chosen by head yaw).

`smplx.SMPLX` returns 55 + 21 + 51 = 127 joints, or 144 with the face contour: `output_joint_names(contour)`.
GVHMR's body pose covers `SKELETON[1:22]` (21 body joints, the root is `global_orient`).
"""

SKELETON = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2", "left_ankle",
    "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar", "right_collar", "head",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "jaw",
    "left_eye_smplhf", "right_eye_smplhf",
    "left_index1", "left_index2", "left_index3", "left_middle1", "left_middle2", "left_middle3",
    "left_pinky1", "left_pinky2", "left_pinky3", "left_ring1", "left_ring2", "left_ring3",
    "left_thumb1", "left_thumb2", "left_thumb3",
    "right_index1", "right_index2", "right_index3", "right_middle1", "right_middle2", "right_middle3",
    "right_pinky1", "right_pinky2", "right_pinky3", "right_ring1", "right_ring2", "right_ring3",
    "right_thumb1", "right_thumb2", "right_thumb3",
)  # fmt: skip

PARENTS = (
    -1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 15, 15, 15,
    20, 25, 26, 20, 28, 29, 20, 31, 32, 20, 34, 35, 20, 37, 38,
    21, 40, 41, 21, 43, 44, 21, 46, 47, 21, 49, 50, 21, 52, 53,
)  # fmt: skip

NUM_JOINTS = len(SKELETON)  # 55
NUM_BODY_JOINTS = 21  # body_pose: SKELETON[1:22]
NUM_HAND_JOINTS = 15  # per hand: SKELETON[25:40] (left), SKELETON[40:55] (right)
BODY_SLICE = slice(1, 22)
JAW, LEFT_EYE, RIGHT_EYE = 22, 23, 24
LEFT_HAND_SLICE = slice(25, 40)
RIGHT_HAND_SLICE = slice(40, 55)
NECK = 12
FINGERS = ("index", "middle", "pinky", "ring", "thumb")  # SMPL-X hand joint order (pinky before ring)

# smplx's VERTEX_IDS['smplx'] in VertexJointSelector order: face, feet, then finger tips (left, right).
EXTRA_VERTEX_JOINTS = (
    "nose", "right_eye", "left_eye", "right_ear", "left_ear",
    "left_big_toe", "left_small_toe", "left_heel", "right_big_toe", "right_small_toe", "right_heel",
    "left_thumb", "left_index", "left_middle", "left_ring", "left_pinky",
    "right_thumb", "right_index", "right_middle", "right_ring", "right_pinky",
)  # fmt: skip
EXTRA_VERTEX_IDS = (
    9120, 9929, 9448, 616, 6,
    5770, 5780, 8846, 8463, 8474, 8635,
    5361, 4933, 5058, 5169, 5286,
    8079, 7669, 7794, 7905, 8022,
)  # fmt: skip

FACE_LANDMARKS = (
    "right_eye_brow1", "right_eye_brow2", "right_eye_brow3", "right_eye_brow4", "right_eye_brow5",
    "left_eye_brow5", "left_eye_brow4", "left_eye_brow3", "left_eye_brow2", "left_eye_brow1",
    "nose1", "nose2", "nose3", "nose4", "right_nose_2", "right_nose_1", "nose_middle", "left_nose_1", "left_nose_2",
    "right_eye1", "right_eye2", "right_eye3", "right_eye4", "right_eye5", "right_eye6",
    "left_eye4", "left_eye3", "left_eye2", "left_eye1", "left_eye6", "left_eye5",
    "right_mouth_1", "right_mouth_2", "right_mouth_3", "mouth_top", "left_mouth_3", "left_mouth_2",
    "left_mouth_1", "left_mouth_5", "left_mouth_4", "mouth_bottom", "right_mouth_4", "right_mouth_5",
    "right_lip_1", "right_lip_2", "lip_top", "left_lip_2", "left_lip_1", "left_lip_3", "lip_bottom", "right_lip_3",
)  # fmt: skip
FACE_CONTOUR = tuple(f"right_contour_{i}" for i in range(1, 9)) + ("contour_middle",) + tuple(
    f"left_contour_{i}" for i in range(8, 0, -1)
)

# smplx's lookup table of the 17 contour landmarks has one row per degree of head yaw, 0..39 then -1..-39.
NUM_CONTOUR_YAWS = 79

assert len(SKELETON) == len(PARENTS) == 55
assert len(EXTRA_VERTEX_JOINTS) == len(EXTRA_VERTEX_IDS) == 21
assert len(FACE_LANDMARKS) == 51 and len(FACE_CONTOUR) == 17


def output_joint_names(use_face_contour: bool = False) -> tuple[str, ...]:
    """Names of the joints `BodyModel` (and `smplx.SMPLX`) returns: 127, or 144 with the face contour."""
    names = SKELETON + EXTRA_VERTEX_JOINTS + FACE_LANDMARKS
    return names + FACE_CONTOUR if use_face_contour else names


def joint_index(name: str, use_face_contour: bool = False) -> int:
    """Index of a named joint in the output joint set (raises KeyError naming the unknown joint)."""
    names = output_joint_names(use_face_contour)
    if name not in names:
        raise KeyError(f"{name!r} is not an SMPL-X output joint; e.g. {', '.join(names[:5])}, ...")
    return names.index(name)
