#!/usr/bin/env bash
# The README's test command: sets up what is missing (scripts/setup.sh), then
# runs every suite, the end-to-end ones included (build tag e2e). Extra
# arguments go to `go test` (e.g. -run TestX).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
eval "$(bash scripts/setup.sh --env)"
export GOFLAGS="${GOFLAGS:-} -buildvcs=false"
BOOTSTRAP_E2E=1 go test -tags e2e -count=1 -timeout 40m "$@" ./...
