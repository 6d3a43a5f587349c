#!/usr/bin/env bash
# Packs a trimmed Ray (what a local cluster and an actor pool need) small enough to carry to a machine with no
# package index, such as the GPU machines the benchmarks run on (their copy of the tree is limited to 64 MiB;
# the Ray wheel alone is 79 MB).
#
#   bash benchmarks/pack_ray.sh [DEST] [PYTHON_TAG]     # default: .whl/ and cp312 (the GPU machines' Python)
#
# Writes DEST/ray-trim.tar.xz and the wheels Ray needs that those machines lack (jsonschema and its own needs).
# There, before the benchmark:
#   python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl
#   tar xJf .whl/ray-trim.tar.xz -C /tmp/site && export PYTHONPATH=/tmp/site:$PWD
#
# Removed from the wheel: the Java jars, the dashboard's web client, and the libraries on top of Ray Core (RLlib,
# Tune, Train, Serve, Data, LLM); kept: Ray Core's binaries (raylet, gcs_server, _raylet.so) and its Python.
# Measured 2026-11-30 with ray 2.60.0: wheel 79.3 MB (201 MB unpacked) → 138 MB unpacked, 20.2 MB as tar.xz;
# the same trim of the cp311 wheel started a local instance and ran an ActorPool here.
set -euo pipefail
dest=${1:-.whl}
tag=${2:-312}
version=${RAY_VERSION:-2.60.0}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$dest"
platforms=(--platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64)
python3 -m pip download -q --no-deps --only-binary=:all: --python-version "${tag:0:1}.${tag:1}" --implementation cp \
    "${platforms[@]}" -d "$work" "ray==$version"
python3 -m pip download -q --no-deps --only-binary=:all: --python-version "${tag:0:1}.${tag:1}" --implementation cp \
    "${platforms[@]}" -d "$dest" jsonschema jsonschema-specifications referencing rpds-py
mkdir "$work/tree"
unzip -q "$work"/ray-*.whl -d "$work/tree"  # unzip keeps the binaries' execute bits (python's zipfile does not)
rm -rf "$work"/tree/ray/{jars,rllib,tune,train,serve,data,llm} "$work/tree/ray/dashboard/client/build"
tar -C "$work/tree" -cf - . | xz -9e -T2 > "$dest/ray-trim.tar.xz"
du -h "$dest/ray-trim.tar.xz"
