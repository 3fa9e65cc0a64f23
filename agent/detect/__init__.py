"""Object detection: model manifests and output decoders, the ONNX detector, the motion gate, windows where small
things move, the tracker, and the one detection service a ward's cameras share."""
