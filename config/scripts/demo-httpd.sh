#!/bin/sh
# Asynchronous start script: becomes the HTTP server and keeps running.
dir="${DEMO_WWW:-/tmp/understudy-demo/www}"
port="${DEMO_PORT:-8080}"
echo "serving $dir on 127.0.0.1:$port"
exec python3 -m http.server "$port" --bind 127.0.0.1 --directory "$dir"
