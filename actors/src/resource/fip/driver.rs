//! Netlink + ARP side of the floating IP resource (in progress).
