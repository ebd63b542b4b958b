#!/bin/sh
# understudy script template (Internet Server Agent): start the HTTP
# daemon. Use it as the start script of the exec resource that runs the
# HTTP daemon (exec 1). Change the settings below to suit your system;
# nothing else needs editing.
#
# understudy passes:
#   CLP_EVENT   START (an ordinary start or stop) or FAILOVER (the group
#               came to this server, or leaves it, by a failover)
#   CLP_DISK    SUCCESS or FAILURE: whether the group's disks are usable
#   CLP_SERVER  HOME (this server comes first in the group's server order)
#               or OTHER
#
# Unlike the product's template, the exit status is that of the start
# command, so that a failed start is seen by the group's failure ladder.

# --- settings ---
HTTPD_START="${HTTPD_START:-/etc/init.d/httpd start}"
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

$HTTPD_START
status=$?
note "$HTTPD_START: exit status $status"
exit $status
