#!/bin/sh
# understudy script template (Internet Server Agent): run clp_httpmon,
# which watches the HTTP daemon. Use it as the start script of the exec
# resource that runs clp_httpmon (exec 2: start_mode Async, depending on
# exec 1). Change the settings below to suit your system; nothing else
# needs editing.
#
# understudy passes:
#   CLP_EVENT   START (an ordinary start or stop) or FAILOVER (the group
#               came to this server, or leaves it, by a failover)
#   CLP_DISK    SUCCESS or FAILURE: whether the group's disks are usable
#   CLP_SERVER  HOME (this server comes first in the group's server order)
#               or OTHER
#
# clp_httpmon keeps running while the HTTP daemon answers and exits when
# it fails: the pid monitor on this resource then starts the recovery (a
# failover). Options: see docs/internet-server-agent.md.

# --- settings ---
IDENTIFIER="${IDENTIFIER:-httpwatch}"
OPTIONS="${OPTIONS:-}"
# --- end of settings ---

note() {
    echo "$(date +"%Y/%m/%d %T") $*"
}

# Where this run comes from, for the script log.
case "$CLP_EVENT" in
START)    kind="ordinary" ;;
FAILOVER) kind="failover" ;;
*)
    note "CLP_EVENT is \"$CLP_EVENT\": not run by understudy, nothing done"
    exit 0
    ;;
esac
if [ "$CLP_DISK" != "SUCCESS" ]; then
    note "$kind start: the group's disks failed (CLP_DISK=$CLP_DISK), nothing done"
    exit 0
fi
if [ "$CLP_SERVER" = "HOME" ]; then
    where="its home server"
else
    where="another server than its home"
fi
note "$kind start on $where"

# Runs until the HTTP daemon fails or the stop script stops it.
# shellcheck disable=SC2086
clp_httpmon "$IDENTIFIER" $OPTIONS
note "clp_httpmon $IDENTIFIER ended with exit status $?"
exit 0
