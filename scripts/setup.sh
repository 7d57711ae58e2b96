#!/usr/bin/env bash
# Installs what the test suites need when it is missing: Debian packages
# (listed in scripts/packages.txt) and pinned Go tools (MinIO, staticcheck)
# built into a cache. Idempotent; a second call installs nothing.
# Prints the environment to use, for `eval "$(scripts/setup.sh --env)"`.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
export GOFLAGS="${GOFLAGS:-} -buildvcs=false"

CACHE="${BOOTSTRAP_CI_CACHE:-$HOME/.cache/bootstrap-ci}"
GOBIN="$CACHE/bin"
mkdir -p "$GOBIN"

# Pinned tools. MinIO's first build takes minutes on two cores: cached by version.
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
STATICCHECK_VERSION=v0.8.2

if [[ "${1:-}" == "--env" ]]; then
  printf 'export PATH=%q\nexport BOOTSTRAP_MINIO_BIN=%q\n' "$GOBIN:$PATH" "$GOBIN/minio"
  exit 0
fi

say() { printf '== setup: %s\n' "$*" >&2; }

# Debian packages: one per line in scripts/packages.txt as "command package"
# (the command whose absence means the package is missing).
need=()
while read -r cmd pkg; do
  [[ -z "$cmd" || "$cmd" == \#* ]] && continue
  command -v "$cmd" >/dev/null 2>&1 || [[ -e "$cmd" ]] || need+=("$pkg")
done < scripts/packages.txt
if ((${#need[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    say "missing Debian packages (need root to install): ${need[*]}; suites that need them will fail"
  else
    say "installing Debian packages: ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
fi

installed_version() { go version -m "$1" 2>/dev/null | awk '$1=="mod"{print $3; exit}'; }
if [[ "$(installed_version "$GOBIN/minio")" != "$MINIO_VERSION" ]]; then
  say "building MinIO $MINIO_VERSION (a few minutes, once)"
  GOBIN="$GOBIN" CGO_ENABLED=0 go install -trimpath "github.com/minio/minio@$MINIO_VERSION"
fi
if [[ "$(installed_version "$GOBIN/staticcheck")" != "$STATICCHECK_VERSION" ]]; then
  say "building staticcheck $STATICCHECK_VERSION"
  GOBIN="$GOBIN" go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"
fi
