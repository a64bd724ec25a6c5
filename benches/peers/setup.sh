#!/usr/bin/env bash
# Creates the Python virtual environments of the peers periscope is measured against
# (os-ken; later faucet), under target/peers/. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/../.."
dir=target/peers/osken
if [ ! -x "$dir/bin/python" ] || ! "$dir/bin/python" -c 'import os_ken' 2>/dev/null; then
    python3 -m venv "$dir"
    "$dir/bin/pip" install -q 'os-ken<4'
fi
echo "$dir/bin/python"
