#!/usr/bin/env bash
# Regenerates api_pb.ts (the CRI messages and services for @bufbuild/protobuf) from api.proto.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
cd "$repo"
protoc --plugin=protoc-gen-es=node_modules/.bin/protoc-gen-es --es_out=test/clients/cri \
  --es_opt=target=ts,import_extension=ts -I test/clients/cri test/clients/cri/api.proto
