"""tools/labwatch.py: what the lab's watchers share (python3 standard library
only): entering a network namespace, dumping its IPv4 addresses over
rtnetlink, and finding the processes of a namespace by command line.

Used by tools/bench-failover and tools/chaos. Every function here works on
the calling thread's network namespace (setns changes only that thread's),
so the watchers run them in a process of their own.
"""

import ctypes
import os
import socket
import struct

NLMSG_ERROR, NLMSG_DONE = 2, 3
RTM_NEWADDR, RTM_DELADDR, RTM_GETADDR = 20, 21, 22
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
IFA_ADDRESS, IFA_LOCAL = 1, 2
RTMGRP_IPV4_IFADDR = 0x10
CLONE_NEWNET = 0x40000000


def setns(name):
    """Moves the calling thread into network namespace /run/netns/NAME."""
    fd = os.open("/run/netns/" + name, os.O_RDONLY)
    try:
        if hasattr(os, "setns"):
            os.setns(fd, CLONE_NEWNET)
        else:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.setns(fd, CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                raise OSError(err, "setns %s: %s" % (name, os.strerror(err)))
    finally:
        os.close(fd)


def vip_in(buf, vip, want=(RTM_NEWADDR,)):
    """(found, done): whether a message of a type in `want` carries `vip`
    (4 bytes), and whether the buffer ends a dump."""
    off, found, done = 0, False, False
    while off + 16 <= len(buf):
        length, mtype = struct.unpack_from("=LH", buf, off)
        if length < 16:
            break
        if mtype in (NLMSG_DONE, NLMSG_ERROR):
            done = True
        elif mtype in want and length >= 24:
            a = off + 24
            while a + 4 <= off + length:
                alen, atype = struct.unpack_from("=HH", buf, a)
                if alen < 4:
                    break
                if atype in (IFA_LOCAL, IFA_ADDRESS) and buf[a + 4:a + alen] == vip:
                    found = True
                a += (alen + 3) & ~3
        off += (length + 3) & ~3
    return found, done


def nl_socket(groups=0):
    """A NETLINK_ROUTE socket in the calling thread's namespace; it stays in
    that namespace when the thread moves on."""
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
    s.bind((0, groups))
    return s


def dump_has_vip(s, vip, seq):
    """Whether an RTM_GETADDR dump on socket `s` lists `vip` (4 bytes)."""
    req = struct.pack("=LHHLL", 24, RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, seq, 0)
    req += struct.pack("=BBBBI", socket.AF_INET, 0, 0, 0, 0)
    s.send(req)
    found = False
    while True:
        f, done = vip_in(s.recv(65536), vip)
        found = found or f
        if done:
            return found


def netns_id(path):
    """(device, inode) of a network namespace file (/run/netns/NAME or
    /proc/PID/ns/net): the namespace's identity."""
    st = os.stat(path)
    return (st.st_dev, st.st_ino)


def scan_processes(servers, markers):
    """{(marker index, server): set of pids}: the processes whose network
    namespace is one of `servers` ({namespace identity: server}) and whose
    command line (arguments joined by spaces) contains markers[i]; what
    `ip netns pids` looks at, without spawning anything. Processes that end
    during the scan are skipped."""
    found = {}
    for entry in os.scandir("/proc"):
        pid = entry.name
        if not pid.isdigit():
            continue
        try:
            server = servers.get(netns_id("/proc/%s/ns/net" % pid))
            if server is None:
                continue
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                line = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        for i, m in enumerate(markers):
            if m in line:
                found.setdefault((i, server), set()).add(int(pid))
    return found
