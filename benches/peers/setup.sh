#!/usr/bin/env bash
# Creates the Python virtual environments of the peers periscope is measured against, under
# target/peers/: os-ken (osken/), faucet (faucet/, whose `faucet` execs the `osken-manager` of
# its own venv), and os-ken 1.4.1's example app simple_switch_13.py (os-ken 3 ships none), taken
# from that release's wheel. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/../.."
dir=target/peers/osken
if [ ! -x "$dir/bin/python" ] || ! "$dir/bin/python" -c 'import os_ken' 2>/dev/null; then
    python3 -m venv "$dir"
    "$dir/bin/pip" install -q 'os-ken<4'
fi
app=target/peers/simple_switch_13.py
if [ ! -s "$app" ]; then
    wheels=$(mktemp -d)
    "$dir/bin/pip" download -q --no-deps -d "$wheels" os-ken==1.4.1
    "$dir/bin/python" - "$wheels" "$app" <<'PY'
import glob, sys, zipfile
wheel = glob.glob(sys.argv[1] + "/os_ken-1.4.1-*.whl")[0]
with zipfile.ZipFile(wheel) as z, open(sys.argv[2], "wb") as out:
    out.write(z.read("os_ken/app/simple_switch_13.py"))
PY
    rm -rf "$wheels"
fi
fdir=target/peers/faucet
if [ ! -x "$fdir/bin/faucet" ] || ! "$fdir/bin/python" -c 'import faucet' 2>/dev/null; then
    python3 -m venv "$fdir"
    "$fdir/bin/pip" install -q faucet
fi
echo "$dir/bin/python"
