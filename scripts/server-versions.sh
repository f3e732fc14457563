# shellcheck shell=bash disable=SC2034  # (the build script uses them)
# The versions of the servers scripts/build-servers.sh builds (sourced by it; read by tests/stack/servers.py).
FERRETDB_VERSION=v1.24.2
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
S5CMD_VERSION=v2.3.0
OPENSEARCH_VERSION=2.19.6
