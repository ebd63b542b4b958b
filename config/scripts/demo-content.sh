#!/bin/sh
# Writes the demo page from the environment the cluster gives start scripts.
set -eu
dir="${DEMO_WWW:-/tmp/understudy-demo/www}"
mkdir -p "$dir"
cat > "$dir/index.html" <<PAGE
<html><body>
<h1>Served by understudy</h1>
<p>group $CLP_GROUPNAME, resource $CLP_RESOURCENAME, event $CLP_EVENT,
server $CLP_SERVER (priority $CLP_PRIORITY), disks $CLP_DISK</p>
</body></html>
PAGE
echo "page written to $dir/index.html"
