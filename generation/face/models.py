"""The offline face models: MediaPipe 0.10.14's legacy ``solutions`` graphs, whose weights ship in the wheel.

Loaded lazily, once per process (the worker holds them), behind :func:`models`. MediaPipe graphs are not safe
to call from two threads at once, so every call goes through :data:`Models.lock`. Nothing is downloaded.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["Detection", "Models", "models"]


@dataclass(frozen=True)
class Detection:
    """One detected face: box in pixels of the image it was found in (may reach outside it), and a score."""

    x: float
    y: float
    w: float
    h: float
    score: float

    @property
    def cx(self) -> float:
        return self.x + self.w / 2


@dataclass
class Models:
    detect_far: Any  # full-range detector: small faces in wide shots
    detect_near: Any  # short-range detector: close selfies
    mesh: Any  # 468 landmarks + 10 iris points
    segment: Any  # person / background
    lock: threading.Lock = field(default_factory=threading.Lock)

    def detect(self, rgb: NDArray[np.uint8]) -> list[Detection]:
        """All faces: the full-range detector (small faces in wide shots, and most selfies); the short-range
        one runs only when that finds none (a very close selfie), which saves a detector pass per photo."""
        h, w = rgb.shape[:2]
        found: list[Detection] = []
        with self.lock:
            for detector in (self.detect_far, self.detect_near):
                result = detector.process(rgb)
                for d in result.detections or []:
                    box = d.location_data.relative_bounding_box
                    found.append(
                        Detection(
                            box.xmin * w, box.ymin * h, box.width * w, box.height * h, float(d.score[0])
                        )
                    )
                if found:
                    break
        return found

    def landmarks(self, rgb: NDArray[np.uint8]) -> NDArray[np.float64] | None:
        """478 x 3 landmarks in pixels of ``rgb`` (z in pixel-like units), or None when no face mesh fits."""
        h, w = rgb.shape[:2]
        with self.lock:
            result = self.mesh.process(rgb)
        if not result.multi_face_landmarks:
            return None
        pts = result.multi_face_landmarks[0].landmark
        return np.array([(p.x * w, p.y * h, p.z * w) for p in pts], dtype=np.float64)

    def person_mask(self, rgb: NDArray[np.uint8]) -> NDArray[np.float32]:
        """Probability that each pixel of ``rgb`` belongs to a person (0..1)."""
        with self.lock:
            result = self.segment.process(rgb)
        return np.asarray(result.segmentation_mask, dtype=np.float32)


@contextlib.contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """MediaPipe's C++ side prints TFLite and absl start-up chatter straight to file descriptor 2 (no
    setting turns it off). Point fd 2 at /dev/null while the graphs are built and warmed up."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


@functools.cache
def models() -> Models:
    """Build the MediaPipe graphs once per process. Importing mediapipe costs about 1 s; building them less."""
    # mediapipe 0.10.14 calls a protobuf API that warns on every inference; nothing for a user to act on.
    warnings.filterwarnings(
        "ignore", message=r"SymbolDatabase\.GetPrototype\(\) is deprecated", category=UserWarning
    )
    with _native_stderr_silenced():
        from mediapipe.python.solutions import face_detection, face_mesh, selfie_segmentation

        built = Models(
            detect_far=face_detection.FaceDetection(model_selection=1, min_detection_confidence=0.5),
            detect_near=face_detection.FaceDetection(model_selection=0, min_detection_confidence=0.6),
            mesh=face_mesh.FaceMesh(
                static_image_mode=True, max_num_faces=1, refine_landmarks=True, min_detection_confidence=0.4
            ),
            segment=selfie_segmentation.SelfieSegmentation(model_selection=0),
        )
        blank = np.zeros((64, 64, 3), np.uint8)  # the first inference of each graph prints the rest
        for graph in (built.detect_far, built.detect_near, built.mesh, built.segment):
            graph.process(blank)
    return built
