"""ONNX frontend: validation and lowering to a float TFLite flatbuffer."""
