"""Regenerate the Python code for proto/*.proto (``make proto``); ``--check`` fails when it is stale.

The .proto files are compiled under the virtual path ``shoal/proto`` so the generated modules import
each other as ``shoal.proto.X_pb2``, which is where setuptools installs this folder.
"""

from __future__ import annotations

import filecmp
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def generate(out: Path) -> list[Path]:
    from grpc_tools import protoc  # dev dependency, imported only here

    protos = sorted(p.name for p in HERE.glob("*.proto"))
    args = ["protoc", f"-Ishoal/proto={HERE}", f"--python_out={out}", f"--pyi_out={out}", f"--grpc_python_out={out}"]
    inc = Path(protoc.__file__).parent / "_proto"
    args.append(f"-I{inc}")
    args += [f"shoal/proto/{p}" for p in protos]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    return sorted((out / "shoal" / "proto").glob("*_pb2*.py*"))


def main() -> int:
    check = "--check" in sys.argv
    with tempfile.TemporaryDirectory() as tmp:
        produced = generate(Path(tmp))
        stale = [p.name for p in produced if not (HERE / p.name).exists() or not filecmp.cmp(p, HERE / p.name, shallow=False)]
        if check:
            if stale:
                print(f"generated protobuf code is stale: {', '.join(stale)}; run `make proto`", file=sys.stderr)
                return 1
            return 0
        for p in produced:
            shutil.copy(p, HERE / p.name)
    print(f"regenerated {len(produced)} files in {HERE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
