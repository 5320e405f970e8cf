#!/usr/bin/env bash
# The gateway-level deflate figures of docs/permessage-deflate.md ("In the gateway"): idle RSS per connection
# with deflate negotiated vs not at 10,000 connections, and gateway CPU time per fan-out delivery with deflate
# on vs off for a 1 KiB JSON message (a 500-member room, and a 20-member one where compression weighs most).
# Builds the release binary first. Memory figures are exact anywhere; CPU figures are CPU time charged to the
# gateway process (/proc/PID/stat), not throughput, but a busy machine still moves them (see the doc).
set -euo pipefail
cd "$(dirname "$0")/../.."
swift build -c release --product switchboard >/dev/null
python3 Benchmarks/deflate/idle-rss.py --connections 10000 --procs 4 --rounds 3
python3 Benchmarks/deflate/fanout-cpu.py --members 500 --messages 2000 --rate 100 --rounds 3
python3 Benchmarks/deflate/fanout-cpu.py --members 20 --messages 3000 --rate 150 --rounds 3
