"""Regenerate the committed gRPC stubs from the .proto files in this folder.

    python -m lightning.rpc.generate            # rewrite lightning/rpc/*_pb2*.py[i]
    python -m lightning.rpc.generate --out DIR  # write elsewhere (the drift test)

protoc emits lnd-style top-level imports (``import lightning_pb2``) because the
.proto files import each other as "lightning.proto", exactly like lnd's; we keep
that so the files stay wire- and source-compatible with lnd's, and rewrite the
imports afterwards so the stubs live in the ``lightning.rpc`` package.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
from importlib import resources
from pathlib import Path

RPC_DIR = Path(__file__).resolve().parent
PROTOS = ("lightning.proto", "router.proto", "invoices.proto")
PACKAGE = "lightning.rpc"

# `import lightning_pb2 as lightning__pb2` (py) and `import lightning_pb2` (pyi)
_IMPORT_RE = re.compile(r"^import (\w+_pb2)\b", re.MULTILINE)


def _plugin(name: str) -> str:
    # The mypy-protobuf plugins sit next to the interpreter in a virtualenv.
    local = Path(sys.executable).parent / name
    found = str(local) if local.exists() else shutil.which(name)
    if not found:
        raise SystemExit(f"{name} not found: pip install mypy-protobuf")
    return found


def generated_files(directory: Path) -> list[Path]:
    """The generated stub files in ``directory``, sorted."""
    return sorted(p for p in directory.iterdir() if re.search(r"_pb2(_grpc)?\.pyi?$", p.name))


def generate(out_dir: Path) -> list[Path]:
    """Run protoc on our .proto files into ``out_dir`` and fix the imports."""
    from grpc_tools import protoc

    well_known = resources.files("grpc_tools") / "_proto"
    with tempfile.TemporaryDirectory() as tmp:
        args = [
            "grpc_tools.protoc",
            f"--proto_path={RPC_DIR}",
            f"--proto_path={well_known}",
            f"--plugin=protoc-gen-mypy={_plugin('protoc-gen-mypy')}",
            f"--plugin=protoc-gen-mypy_grpc={_plugin('protoc-gen-mypy_grpc')}",
            f"--python_out={tmp}",
            f"--grpc_python_out={tmp}",
            f"--mypy_out={tmp}",
            f"--mypy_grpc_out={tmp}",
            *PROTOS,
        ]
        if protoc.main(args) != 0:
            raise SystemExit("protoc failed")
        out_dir.mkdir(parents=True, exist_ok=True)
        written = []
        for src in generated_files(Path(tmp)):
            text = _IMPORT_RE.sub(rf"from {PACKAGE} import \1", src.read_text())
            dest = out_dir / src.name
            dest.write_text(text)
            written.append(dest)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=RPC_DIR, help="output directory")
    args = parser.parse_args(argv)
    for path in generate(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
