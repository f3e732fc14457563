#!/usr/bin/env bash
# Build the test stack's servers and baselines from the package registries, each once per version:
#   ferretdb  FerretDB v1 (SQLite backend), from the Go module proxy
#   minio     MinIO server, from the Go module proxy
#   s5cmd     s5cmd, the S3 copier the S3 benchmark compares with, from the Go module proxy
#   opensearch  OpenSearch 2.19 jars from Maven Central and the runner tests/stack/opensearch/ builds
# Everything lands in $SERVERS_DIR/<name>-<version>/ (default .build/servers, git-ignored); a
# directory holding its `.built` stamp is skipped, so a second run takes a second.
#   scripts/build-servers.sh [name ...]     (default: all)
set -euo pipefail
cd "$(dirname "$0")/.."
SERVERS_DIR=${SERVERS_DIR:-.build/servers}
# The versions, one place; tests/stack/servers.py reads this file to find the builds.
source scripts/server-versions.sh

log() { printf '[build-servers] %s\n' "$*" >&2; }

# go_build NAME VERSION MODULE@VERSION PACKAGE [prepare-function]
# Copies the module's source out of the module cache (it is read-only there), lets the optional
# function prepare it, then builds PACKAGE into $SERVERS_DIR/NAME-VERSION/NAME.
go_build() {
  local name=$1 version=$2 module=$3 package=$4 prepare=${5:-}
  local out="$SERVERS_DIR/$name-$version" src dir
  [ -f "$out/.built" ] && return 0
  command -v go >/dev/null || { log "no 'go' on PATH: the $name build needs Go (see README)"; exit 1; }
  log "building $name $version from the Go module proxy (the first build takes minutes)"
  dir=$(go mod download -json "$module" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  if [ -z "$dir" ] || [ ! -d "$dir" ]; then log "go mod download $module gave no source directory"; exit 1; fi
  rm -rf "$out" && mkdir -p "$out"
  src="$out/src"
  cp -R "$dir" "$src" && chmod -R u+w "$src"
  [ -z "$prepare" ] || "$prepare" "$src" "$version"
  (cd "$src" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -o "../$name" "$package")
  rm -rf "$src"
  touch "$out/.built"
}

# FerretDB embeds build/version/version.txt, which the published module leaves empty.
ferretdb_version_file() { printf '%s\n' "$2" >"$1/build/version/version.txt"; }

# The runner's own sources: a build whose stamp holds another hash is stale and built again.
runner_hash() { find tests/stack/opensearch -type f -print0 | LC_ALL=C sort -z | xargs -0 cat | sha256sum | cut -c1-16; }

build_opensearch() {
  local out="$SERVERS_DIR/opensearch-$OPENSEARCH_VERSION" hash
  hash=$(runner_hash)
  [ -f "$out/.built" ] && [ "$(cat "$out/.built")" = "$hash" ] && return 0
  command -v mvn >/dev/null || { log "no 'mvn' on PATH: the OpenSearch runner needs Maven and JDK 17"; exit 1; }
  log "building the OpenSearch $OPENSEARCH_VERSION runner with Maven"
  rm -rf "$out"
  case $out in /*) ;; *) out=$PWD/$out ;; esac
  mvn -q -B -Dstyle.color=never -f tests/stack/opensearch/pom.xml package \
    -Dopensearch.version="$OPENSEARCH_VERSION" -Dstack.build.dir="$out"
  rm -rf "$out/maven-archiver" "$out/maven-status" "$out/generated-sources"
  printf '%s\n' "$hash" >"$out/.built"
}

wanted=("$@")
[ ${#wanted[@]} -gt 0 ] || wanted=(ferretdb minio s5cmd opensearch)
for name in "${wanted[@]}"; do
  case $name in
    ferretdb) go_build ferretdb "$FERRETDB_VERSION" "github.com/FerretDB/FerretDB@$FERRETDB_VERSION" \
                ./cmd/ferretdb ferretdb_version_file ;;
    minio) go_build minio "$MINIO_VERSION" "github.com/minio/minio@$MINIO_VERSION" . ;;
    s5cmd) go_build s5cmd "$S5CMD_VERSION" "github.com/peak/s5cmd/v2@$S5CMD_VERSION" . ;;
    opensearch) build_opensearch ;;
    *) log "unknown server '$name' (ferretdb, minio, s5cmd, opensearch)"; exit 2 ;;
  esac
done
log "ready: ${wanted[*]} in $SERVERS_DIR"
