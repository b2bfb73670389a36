#!/usr/bin/env bash
# Regenerates api_pb.ts (the CRI messages and services for @bufbuild/protobuf) from api.proto.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
cd "$repo"
protoc --plugin=protoc-gen-es=node_modules/.bin/protoc-gen-es --es_out=test/clients/cri \
  --es_opt=target=ts,import_extension=ts -I test/clients/cri test/clients/cri/api.proto
# The generator marks its output eslint-disable; the code passes the project's rules as it is, and the
# unused directive would be the one lint warning.
sed -i '/^\/\* eslint-disable \*\/$/d' test/clients/cri/api_pb.ts
