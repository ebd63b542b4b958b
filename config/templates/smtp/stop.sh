#!/bin/sh
# understudy script template (Internet Server Agent): stop the SMTP
# daemon. Use it as the stop script of the exec resource that runs the
# SMTP daemon (exec 1). Change the settings below to suit your system;
# nothing else needs editing.
#
# understudy passes:
#   CLP_EVENT   START (an ordinary start or stop) or FAILOVER (the group
#               came to this server, or leaves it, by a failover)
#   CLP_DISK    SUCCESS or FAILURE: whether the group's disks are usable
#   CLP_SERVER  HOME (this server comes first in the group's server order)
#               or OTHER
#
# Exits 0 whatever the stop command does, as the product's template: the
# daemon may be gone already (it failed, which is why the group moves),
# and a failed stop script would start the deactivation's final action.

# --- settings ---
SMTPD_STOP="${SMTPD_STOP:-/etc/init.d/sendmail stop}"
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
    note "$kind stop: the group's disks failed (CLP_DISK=$CLP_DISK), nothing done"
    exit 0
fi
if [ "$CLP_SERVER" = "HOME" ]; then
    where="its home server"
else
    where="another server than its home"
fi
note "$kind stop on $where"

$SMTPD_STOP
note "$SMTPD_STOP: exit status $?"
exit 0
