#!/usr/bin/env bash
# Creates the Python virtual environment of the Open vSwitch Python IDL (PyPI `ovs`), which the
# OVSDB benchmark measures periscope against, under target/peers/ovs. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/../.."
dir=target/peers/ovs
if [ ! -x "$dir/bin/python" ] || ! "$dir/bin/python" -c 'import ovs.db.idl' 2>/dev/null; then
    python3 -m venv "$dir"
    "$dir/bin/pip" install -q ovs
fi
echo "$dir/bin/python"
