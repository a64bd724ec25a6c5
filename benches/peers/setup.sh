#!/usr/bin/env bash
# Creates the Python virtual environments of the peers periscope is measured and tested against,
# under target/peers/: os-ken (with os-ken 1.4.1's sample app simple_switch_13.py, which os-ken
# 3.x no longer ships) and faucet. Safe to run again. Prints the os-ken venv's python.
set -euo pipefail
cd "$(dirname "$0")/../.."
dpkg-query -W -f='${Status}' python3-venv 2>/dev/null | grep -q "install ok installed" || {
    sudo_cmd=""
    [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends python3-venv
}
peers=target/peers
dir=$peers/osken
if [ ! -x "$dir/bin/python" ] || ! "$dir/bin/python" -c 'import os_ken' 2>/dev/null; then
    python3 -m venv "$dir"
    "$dir/bin/pip" install -q 'os-ken<4'
fi
app=$peers/apps/simple_switch_13.py
if [ ! -s "$app" ]; then
    mkdir -p "$peers/apps" "$peers/wheel"
    "$dir/bin/pip" download -q --no-deps -d "$peers/wheel" 'os-ken==1.4.1'
    "$dir/bin/python" - "$peers/wheel" "$app" <<'PY'
import glob, sys, zipfile
wheel = glob.glob(sys.argv[1] + "/os_ken-1.4.1-*.whl")[0]
with zipfile.ZipFile(wheel) as z, open(sys.argv[2], "wb") as out:
    out.write(z.read("os_ken/app/simple_switch_13.py"))
PY
fi
fdir=$peers/faucet
if [ ! -x "$fdir/bin/faucet" ] || ! "$fdir/bin/python" -c 'import faucet' 2>/dev/null; then
    python3 -m venv "$fdir"
    "$fdir/bin/pip" install -q faucet
fi
echo "$dir/bin/python"
