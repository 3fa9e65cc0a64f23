"""Object detection (issue 4, first slice): model manifests, output decoders, the ONNX detector."""
