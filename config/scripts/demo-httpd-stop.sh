#!/bin/sh
# Stop script: the cluster gives the asynchronous start script's pid.
echo "stopping HTTP server pid ${CLP_PID:-?} (factor $CLP_FACTOR)"
[ -n "${CLP_PID:-}" ] && kill "$CLP_PID" 2>/dev/null
exit 0
