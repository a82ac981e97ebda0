#!/usr/bin/env bash
# LoRaWAN library benchmark: runs the bench-lorawan binary from an existing build directory and,
# in the same run on the same machine, `openssl speed` for AES-128-CMAC over the same number of
# bytes a 30-byte uplink's MIC covers (B0 16 + MHDR..FRMPayload 26 = 42 bytes). Builds nothing.
# Prints both and the ratio MIC verification / raw CMAC (aim: <= 1.5).
# Usage: tools/bench/lorawan.sh [BUILD_DIR] [RUNS]     (defaults: build, 7)
set -euo pipefail
build=${1:-build}
runs=${2:-7}
bin="$build/tools/bench-lorawan"
[ -x "$bin" ] || { echo "no $bin: build first (cmake --build $build)" >&2; exit 1; }
command -v openssl >/dev/null || { echo "openssl CLI not found" >&2; exit 1; }

echo "## machine"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//') ($(nproc) cores)"
echo "os: $(. /etc/os-release && echo "$PRETTY_NAME"), kernel $(uname -r)"
echo "openssl: $(openssl version)"
echo

echo "## bench-lorawan ($runs runs)"
out=$("$bin" -r "$runs")
echo "$out"
echo

# openssl speed: 1-second runs, wall clock (-elapsed, like bench-lorawan), machine-readable (-mr).
# Its CMAC loop is EVP_MAC_init(ctx, NULL) + update + final on a keyed context, as ours.
echo "## openssl speed -cmac aes-128-cbc -bytes 42 ($runs runs of 1 s, wall clock)"
ref=()
for _ in $(seq "$runs"); do
  line=$(openssl speed -elapsed -seconds 1 -bytes 42 -mr -cmac aes-128-cbc 2>&1 | grep '^+R:')
  # +R:<count>:cmac(aes-128-cbc):<seconds>
  ns=$(echo "$line" | awk -F: '{ printf "%.1f", $4 * 1e9 / $2 }')
  ref+=("$ns")
  echo "openssl run: $ns ns/op"
done
ref_med=$(printf '%s\n' "${ref[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
echo "openssl_cmac_42 median: $ref_med ns/op"
echo

mic=$(echo "$out" | awk '$1=="mic_verify" {print $2}')
dmic=$(echo "$out" | awk '$1=="decode_mic" {print $2}')
raw=$(echo "$out" | awk '$1=="raw_cmac_42" {print $2}')
echo "## summary (ns/op, medians)"
printf 'mic_verify %s  decode_mic %s  raw_cmac_42(in-process) %s  openssl speed %s\n' \
  "$mic" "$dmic" "$raw" "$ref_med"
awk -v m="$mic" -v d="$dmic" -v r="$ref_med" -v i="$raw" 'BEGIN {
  printf "ratio mic_verify / openssl speed CMAC = %.2f (aim <= 1.5)\n", m / r
  printf "ratio decode_mic / openssl speed CMAC = %.2f\n", d / r
  printf "ratio mic_verify / in-process raw CMAC = %.2f\n", m / i
}'
