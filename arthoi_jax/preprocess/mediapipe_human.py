"""Human perception without downloads: MediaPipe's legacy Pose, Hands and Selfie Segmentation solutions.

Their weights ship inside the `mediapipe==0.10.14` wheel (later releases dropped the legacy `solutions` and their
weights). Per frame: a person mask, the 33 BlazePose body landmarks and 21 landmarks per hand, each with a
confidence.

Coordinates: MediaPipe returns landmarks normalized by the image width and height, with 0 and 1 at the image's
outer edges. So x * W, y * H are already our continuous pixel coordinates (pixel centres at +0.5): no half-pixel
shift. Landmarks may lie a little outside the image (MediaPipe extrapolates occluded or cut-off joints); they
are kept as predicted, and their confidence says how far to trust them.

Confidences:
  * body: MediaPipe's per-landmark `visibility` (probability that the landmark is in the image and unoccluded);
  * hands: the legacy hand model gives no per-landmark score, so every landmark of a found hand gets the hand's
    handedness-classification score; a hand not found has confidence 0 and zero coordinates.

Left/right: body landmarks name the person's own left and right (BlazePose order, `BODY_LANDMARKS`). The hand
model's handedness label assumes a mirrored (selfie) image, so on an ordinary video its "Left" is the person's
right hand. Hands are therefore assigned to sides by the distance of their wrist to the body's two wrist
landmarks when the body is found (this also settles two hands given the same label, which happens), and by the
swapped label otherwise. Output order is (left, right), as the bundle's `hand_keypoints`.

A frame where no person is found is an explicit empty result (`body_found[t]` False, empty mask, zero
confidences), never an error.
"""

from __future__ import annotations

import dataclasses
import logging
import warnings
from typing import Literal

import numpy as np

from arthoi_jax.errors import InputError, MissingDependencyError

log = logging.getLogger("arthoi_jax")

MEDIAPIPE_PIN = "mediapipe==0.10.14"
BODY_LANDMARKS = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye", "right_eye_outer",
    "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder", "right_shoulder", "left_elbow",
    "right_elbow", "left_wrist", "right_wrist", "left_pinky", "right_pinky", "left_index", "right_index",
    "left_thumb", "right_thumb", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    "left_heel", "right_heel", "left_foot_index", "right_foot_index",
)
LEFT_WRIST, RIGHT_WRIST = BODY_LANDMARKS.index("left_wrist"), BODY_LANDMARKS.index("right_wrist")
NUM_HAND_LANDMARKS = 21


@dataclasses.dataclass(frozen=True)
class HumanPerception:
    """Per-frame MediaPipe results for a [T, H, W] video, in continuous pixel coordinates."""

    person_mask: np.ndarray  # [T, H, W] bool
    body_found: np.ndarray  # [T] bool
    body_landmarks: np.ndarray  # [T, 33, 2] float32 (x, y) pixels, order BODY_LANDMARKS; 0 where not found
    body_conf: np.ndarray  # [T, 33] float32 in [0, 1]
    body_world: np.ndarray  # [T, 33, 3] float32 metres, origin mid-hips, x right, y down, z away from camera
    hand_keypoints: np.ndarray  # [T, 2, 21, 2] float32 (left, right) hand, MediaPipe 21-point order
    hand_conf: np.ndarray  # [T, 2, 21] float32 in [0, 1]

    @property
    def hand_found(self) -> np.ndarray:
        """[T, 2] bool: (left, right) hand found."""
        return self.hand_conf.max(axis=-1) > 0


def import_mediapipe():
    """The `mediapipe` module with its legacy solutions, or MissingDependencyError saying what to install."""
    try:
        import mediapipe as mp
    except ImportError as e:
        raise MissingDependencyError(
            f"human perception needs the 'mediapipe' package ({e}); install it with "
            f"`pip install {MEDIAPIPE_PIN} opencv-contrib-python` (see requirements.txt)") from None
    if not hasattr(mp, "solutions"):
        raise MissingDependencyError(
            f"mediapipe {getattr(mp, '__version__', '?')} has no legacy 'solutions' (dropped after 0.10.14, with "
            f"their bundled weights); install `pip install {MEDIAPIPE_PIN}`")
    return mp


def check_rgb_frames(frames: np.ndarray) -> np.ndarray:
    """[T, H, W, 3] uint8 RGB with T >= 1, else InputError."""
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] < 1:
        raise InputError(f"frames: expected [T, H, W, 3] uint8 RGB with T >= 1, "
                         f"got {list(frames.shape)} {frames.dtype}")
    return frames


def perceive_human(frames: np.ndarray, *, mask_source: Literal["pose", "selfie"] = "pose",
                   video_mode: bool = True, model_complexity: int = 1, min_detection_confidence: float = 0.5,
                   mask_threshold: float = 0.5, detect_hands: bool = True) -> HumanPerception:
    """Runs MediaPipe Pose (+ Hands, + Selfie Segmentation) on every frame.

    Args:
      frames: [T, H, W, 3] uint8 RGB. MediaPipe resizes internally to ~256 px, so frames of 256-1024 px give
        the same landmarks; the mask comes back at the input size.
      mask_source: "pose" (Pose's segmentation, empty where no body is found) or "selfie" (Selfie Segmentation,
        model 1 (landscape), whose mask does not depend on the body detector).
      video_mode: track landmarks from frame to frame (smoother, faster) rather than detect in each image.
      model_complexity: Pose model 0 (lite), 1 (full) or 2 (heavy).
      min_detection_confidence: detector threshold for the person and the hands.
      mask_threshold: a pixel is in the person mask where the segmentation probability exceeds this.
      detect_hands: run the Hands solution (at most 2 hands).
    Returns:
      HumanPerception (see its fields; the module docstring states the conventions).
    Raises:
      MissingDependencyError: mediapipe is missing or too new. InputError: malformed frames or options.
    """
    frames = check_rgb_frames(frames)
    if mask_source not in ("pose", "selfie"):
        raise InputError(f"mask_source: expected 'pose' or 'selfie', got {mask_source!r}")
    if model_complexity not in (0, 1, 2):
        raise InputError(f"model_complexity: expected 0, 1 or 2, got {model_complexity!r}")
    mp = import_mediapipe()
    T, H, W, _ = frames.shape
    out = {
        "person_mask": np.zeros((T, H, W), bool), "body_found": np.zeros(T, bool),
        "body_landmarks": np.zeros((T, 33, 2), np.float32), "body_conf": np.zeros((T, 33), np.float32),
        "body_world": np.zeros((T, 33, 3), np.float32),
        "hand_keypoints": np.zeros((T, 2, NUM_HAND_LANDMARKS, 2), np.float32),
        "hand_conf": np.zeros((T, 2, NUM_HAND_LANDMARKS), np.float32),
    }
    scale = np.array([W, H], np.float32)
    with warnings.catch_warnings():
        # mediapipe 0.10.14 calls a protobuf API that protobuf 4 marks deprecated; nothing for our users to act on
        warnings.filterwarnings("ignore", message="SymbolDatabase.GetPrototype", category=UserWarning)
        pose = mp.solutions.pose.Pose(static_image_mode=not video_mode, model_complexity=model_complexity,
                                      enable_segmentation=mask_source == "pose",
                                      min_detection_confidence=min_detection_confidence)
        hands = (mp.solutions.hands.Hands(static_image_mode=not video_mode, max_num_hands=2,
                                          min_detection_confidence=min_detection_confidence)
                 if detect_hands else None)
        selfie = (mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=1)
                  if mask_source == "selfie" else None)
        try:
            for t, frame in enumerate(frames):
                _process_frame(np.ascontiguousarray(frame), t, pose, hands, selfie, out, scale, mask_threshold)
        finally:
            for solution in (pose, hands, selfie):
                if solution is not None:
                    solution.close()
    log.info("mediapipe: body in %d/%d frames, left hand in %d, right hand in %d", out["body_found"].sum(), T,
             (out["hand_conf"][:, 0].max(-1) > 0).sum(), (out["hand_conf"][:, 1].max(-1) > 0).sum())
    return HumanPerception(**out)


def bundle_fields(p: HumanPerception) -> dict:
    """The bundle fields this perception fills (`arthoi_jax.io.bundle.SceneBundle` names and dtypes):
    human_masks [T, H, W] bool, hand_keypoints [T, 2, 21, 2] float32 (left, right), hand_keypoint_conf
    [T, 2, 21] float32. Body landmarks have no bundle field yet (bundle v1)."""
    return {"human_masks": p.person_mask.astype(bool), "hand_keypoints": p.hand_keypoints.astype(np.float32),
            "hand_keypoint_conf": p.hand_conf.astype(np.float32)}


def _process_frame(frame, t, pose, hands, selfie, out: dict, scale: np.ndarray, mask_threshold: float) -> None:
    r = pose.process(frame)
    if r.pose_landmarks is not None:
        lm = r.pose_landmarks.landmark
        out["body_found"][t] = True
        out["body_landmarks"][t] = np.array([[p.x, p.y] for p in lm], np.float32) * scale
        out["body_conf"][t] = np.clip([p.visibility for p in lm], 0.0, 1.0)
        if r.pose_world_landmarks is not None:
            out["body_world"][t] = [[p.x, p.y, p.z] for p in r.pose_world_landmarks.landmark]
        if r.segmentation_mask is not None:
            out["person_mask"][t] = r.segmentation_mask > mask_threshold
    if selfie is not None:
        out["person_mask"][t] = selfie.process(frame).segmentation_mask > mask_threshold
    if hands is not None:
        _assign_hands(hands.process(frame), t, out, scale)


def _assign_hands(result, t: int, out: dict, scale: np.ndarray) -> None:
    """Puts the hands of one frame into (left, right) slots; see the module docstring for the rule."""
    if not result.multi_hand_landmarks:
        return
    found = []
    for handedness, landmarks in zip(result.multi_handedness, result.multi_hand_landmarks):
        label = handedness.classification[0].label  # of the mirrored image
        score = float(np.clip(handedness.classification[0].score, 0.0, 1.0))
        xy = np.array([[p.x, p.y] for p in landmarks.landmark], np.float32) * scale
        found.append((1 if label == "Left" else 0, score, xy))  # swapped: mirrored "Left" is the right hand
    if out["body_found"][t]:
        wrists = out["body_landmarks"][t, [LEFT_WRIST, RIGHT_WRIST]]
        dist = np.array([[np.linalg.norm(xy[0] - w) for w in wrists] for _, _, xy in found])  # [hands, 2]
        if len(found) == 1:
            sides = [int(np.argmin(dist[0]))]
        else:  # two hands: the pairing with the smaller total wrist distance
            straight, crossed = dist[0, 0] + dist[1, 1], dist[0, 1] + dist[1, 0]
            sides = [0, 1] if straight <= crossed else [1, 0]
    else:
        sides = [side for side, _, _ in found]
    for side, (_, score, xy) in zip(sides, found):
        if score > out["hand_conf"][t, side, 0]:  # same side twice (no body): keep the surer hand
            out["hand_keypoints"][t, side] = xy
            out["hand_conf"][t, side] = score
