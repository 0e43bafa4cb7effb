"""Generated gRPC/protobuf code for the control and dispatcher APIs (see gen.py)."""
