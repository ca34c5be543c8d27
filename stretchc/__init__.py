"""stretchc: a pass-based compiler of branched ONNX models into parallel multi-processor bundles."""

__version__ = "0.1.0"
