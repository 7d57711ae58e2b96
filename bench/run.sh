#!/usr/bin/env bash
# One first-boot run with one S3 layer and one file from S3, against the IMDSv2
# emulator and a real MinIO (STS session credentials served through IMDS):
# bootstrap vs. the curl+jq script operators write today (peer-curl.sh),
# measured in the same run. Prints wall time, CPU time, peak RSS and IMDS
# requests (median wall time, mean CPU time — GNU time counts CPU in 10 ms
# ticks, so the mean over N runs is the honest figure — median RSS), and the
# ratios.
#
# SIZE_KB sets the size of the file fetched from S3 (default 64): a large one
# measures the download path (streaming, digest, atomic write) instead of the
# start-up. Both sides fsync the file before renaming it into place. To see
# where the time goes: `go test -run '^$' -bench S3File -cpuprofile cpu.out
# ./internal/fetch` (the same path against MinIO), or `perf record -g` on a
# run of the binary (KEEP=1 keeps its work directory).
#
#   bash bench/run.sh            N=9 bash bench/run.sh       SIZE_KB=262144 N=3 bash bench/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-10}
SIZE_KB=${SIZE_KB:-64}
work=$(mktemp -d)
bed_pid=
# The test bed is always stopped; KEEP=1 keeps the work directory to look at.
cleanup() {
  if [[ -n "$bed_pid" ]]; then kill "$bed_pid" 2>/dev/null; wait "$bed_pid" 2>/dev/null || true; fi
  if [[ -z "${KEEP:-}" ]]; then rm -rf "$work"; else echo "kept $work"; fi
}
trap cleanup EXIT

CGO_ENABLED=0 go build -trimpath -o "$work/bootstrap" ./cmd/bootstrap
go build -o "$work/testbed" ./cmd/bootstrap-testbed

cat > "$work/user-data" <<'YAML'
#bootstrap-config
aws:
  s3:
    path_style: true
include:
  - s3://bench/layers/base.yaml
YAML
cat > "$work/base.yaml" <<'YAML'
files:
  - path: /etc/app/app.conf
    source: s3://bench/files/app.conf
    mode: "0600"
YAML
head -c "$((SIZE_KB * 1024))" /dev/urandom > "$work/app.conf"

"$work/testbed" --minio --user-data "$work/user-data" \
  --object bench/layers/base.yaml="$work/base.yaml" --object bench/files/app.conf="$work/app.conf" \
  --env-file "$work/env" >/dev/null 2>"$work/testbed.log" &
bed_pid=$!
for _ in $(seq 1 240); do [[ -s "$work/env" ]] && break; sleep 0.5; done
[[ -s "$work/env" ]] || { echo "test bed did not start:"; cat "$work/testbed.log"; exit 1; }
# shellcheck disable=SC1091
source "$work/env"
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null

measure() { # name command... → appends "wall cpu rss" to $work/res-$name
  local name=$1; shift
  rm -rf "$work/root" "$work/state"; mkdir -p "$work/root"
  local t0=$EPOCHREALTIME
  /usr/bin/time -f '%e %U %S %M' -o "$work/time" "$@" 2>"$work/log" >/dev/null || { cat "$work/log"; exit 1; }
  local t1=$EPOCHREALTIME
  cmp -s "$work/app.conf" "$work/root/etc/app/app.conf" || { echo "$name: wrong file content"; exit 1; }
  [[ "$(stat -c %a "$work/root/etc/app/app.conf")" == 600 ]] || { echo "$name: wrong mode"; exit 1; }
  read -r _ user sys rss < "$work/time"
  echo "$(echo "$t1 - $t0" | bc -l) $(echo "$user + $sys" | bc -l) $rss" >> "$work/res-$name"
}
for _ in $(seq 1 "$N"); do
  measure bootstrap "$work/bootstrap" run --datasource ec2 --root "$work/root" --state-dir "$work/state" --log-format json
  jq -r 'select(.msg=="run finished") | .imds_requests' "$work/log" >> "$work/imds"
  measure peer sh bench/peer-curl.sh "$work/root"
done

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
col() { awk -v c="$2" '{print $c}' "$work/res-$1" | median; }
mean() { awk -v c="$2" '{s+=$c} END {print s/NR}' "$work/res-$1"; }
bw=$(col bootstrap 1) bc_=$(mean bootstrap 2) br=$(col bootstrap 3)
pw=$(col peer 1) pc=$(mean peer 2) pr=$(col peer 3)
imds=$(median < "$work/imds")
printf '\nfirst-boot run, one S3 layer + one %d KiB file from S3, medians of %d (MinIO + IMDSv2 emulator on loopback)\n' "$SIZE_KB" "$N"
printf '%-22s %10s %10s %12s %14s\n' "" "wall s" "CPU s" "peak RSS KB" "IMDS requests"
printf '%-22s %10.3f %10.3f %12d %14s\n' "bootstrap" "$bw" "$bc_" "$br" "$imds"
printf '%-22s %10.3f %10.3f %12d %14s\n' "peer (curl+jq script)" "$pw" "$pc" "$pr" "5"
printf 'ratio bootstrap/peer: wall %.2f, CPU %.2f, peak RSS %.2f\n' \
  "$(echo "$bw / $pw" | bc -l)" "$(echo "$bc_ / $pc" | bc -l)" "$(echo "$br / $pr" | bc -l)"
if ((SIZE_KB >= 10240)); then
  printf 'throughput (file size / wall): bootstrap %.0f MB/s, peer %.0f MB/s\n' \
    "$(echo "$SIZE_KB * 1024 / 1000000 / $bw" | bc -l)" "$(echo "$SIZE_KB * 1024 / 1000000 / $pw" | bc -l)"
fi
