#!/usr/bin/env bash
# Times `bootstrap run` configuring two adapters (a fresh root and state
# directory each time) and a rerun that changes nothing, N times each, in a
# guest network namespace this script makes (veth eth0..eth2, peers in a
# second namespace; removed at exit). Needs root and iproute2. Prints the
# median, min and max wall time per renderer.
#
#   sudo bash bench/network.sh        N=50 RENDERERS="netplan ifupdown" sudo bash bench/network.sh
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-20}
RENDERERS=${RENDERERS:-netplan networkmanager networkd ifupdown}
work=$(mktemp -d)
ns=bsbench$$ peer=bsbenchp$$
cleanup() { ip netns del "$ns" 2>/dev/null || true; ip netns del "$peer" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
CGO_ENABLED=0 go build -trimpath -o "$work/bootstrap" ./cmd/bootstrap
ip netns add "$ns"
ip netns add "$peer"
for i in 0 1 2; do
  ip link add "eth$i" netns "$ns" address "02:00:00:00:00:1$i" type veth peer name "p$i" netns "$peer"
  ip -n "$peer" link set "p$i" up
done
ip -n "$ns" link set eth0 up
ip -n "$ns" addr add 10.0.0.2/24 dev eth0

ms() { echo $(( ($2 - $1) / 1000000 )); }
stats() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {printf "median %d ms, min %d ms, max %d ms", a[int((NR+1)/2)], a[1], a[NR]}'; }
for r in $RENDERERS; do
  cat >"$work/net.yaml" <<YAML
network:
  renderer: $r
  adapters:
    - {kind: public_network, ip: 10.2.0.5, gateway: 10.2.0.1, mac: '02:00:00:00:00:12'}
    - {kind: private_network, ip: 10.1.0.5, adapter: 1}
YAML
  first=() rerun=()
  for _ in $(seq "$N"); do
    rm -rf "$work/root" "$work/state"; mkdir -p "$work/root/etc/network" "$work/state"
    printf 'auto lo\niface lo inet loopback\n' >"$work/root/etc/network/interfaces"
    for d in eth1 eth2; do ip -n "$ns" addr flush dev "$d"; ip -n "$ns" link set "$d" down; done
    run() { ip netns exec "$ns" "$work/bootstrap" run --datasource none --config "$work/net.yaml" --root "$work/root" --state-dir "$work/state" 2>/dev/null; }
    t0=$(date +%s%N); run; t1=$(date +%s%N); run; t2=$(date +%s%N)
    first+=("$(ms "$t0" "$t1")") rerun+=("$(ms "$t1" "$t2")")
  done
  printf '%-15s N=%d  two adapters: %s;  rerun, nothing to change: %s\n' "$r" "$N" "$(stats "${first[@]}")" "$(stats "${rerun[@]}")"
done
