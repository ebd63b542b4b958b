#!/usr/bin/env python3
"""Tells a client which lab server it reached (python3 standard library only).

Listens on TCP (default 0.0.0.0:8080, so it answers on the server's own
addresses and on any floating IP the server holds) and answers every
connection with the server's name and a newline, then closes it:

  * a request starting with GET or HEAD gets the name as a minimal HTTP/1.0
    response, so `curl http://198.51.100.50:8080/` works;
  * anything else (an empty line, a half-closed connection, or nothing at all
    for --wait seconds) gets the bare name line.

The name is --name, else the name of the network namespace the responder runs
in (`ip netns identify`) without --strip-prefix (default: $LAB_PREFIX), else
the host name. With no arguments it can serve directly as an exec resource's
asynchronous start script: one configuration then gives every server's
responder its own name. SIGTERM and SIGINT end it with status 0.
"""

import argparse
import os
import signal
import socket
import socketserver
import sys

MAX_REQUEST = 16 * 1024


def netns_name():
    """The name under /run/netns of this process's network namespace, if any."""
    try:
        me = os.stat("/proc/self/ns/net")
        for name in sorted(os.listdir("/run/netns")):
            st = os.stat(os.path.join("/run/netns", name))
            if (st.st_dev, st.st_ino) == (me.st_dev, me.st_ino):
                return name
    except OSError:
        pass
    return None


def server_name(args):
    if args.name:
        return args.name
    name = netns_name()
    if name is None:
        return socket.gethostname()
    prefix = args.strip_prefix
    if prefix and name.startswith(prefix) and len(name) > len(prefix):
        name = name[len(prefix):]
    return name


def http_response(body, head_only):
    header = (
        "HTTP/1.0 200 OK\r\n"
        "Content-Type: text/plain\r\n"
        "Content-Length: %d\r\n"
        "Connection: close\r\n"
        "\r\n" % len(body)
    ).encode()
    return header if head_only else header + body


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        conn = self.request
        body = self.server.answer
        conn.settimeout(self.server.wait)
        try:
            first = conn.recv(MAX_REQUEST)
        except socket.timeout:
            first = b""
        except OSError:
            return
        word = first.split(b" ", 1)[0]
        try:
            if word in (b"GET", b"HEAD"):
                request = first
                conn.settimeout(1.0)
                while b"\r\n\r\n" not in request and b"\n\n" not in request:
                    more = conn.recv(MAX_REQUEST)
                    if not more or len(request) > MAX_REQUEST:
                        break
                    request += more
                conn.sendall(http_response(body, word == b"HEAD"))
            else:
                conn.sendall(body)
            # Closing with unread input would send a reset that may overtake
            # the answer: half-close, then read until the client closes.
            conn.shutdown(socket.SHUT_WR)
            conn.settimeout(1.0)
            while conn.recv(MAX_REQUEST):
                pass
        except OSError:
            pass


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
    request_queue_size = 128


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--name", help="the name to answer (default: see above)")
    parser.add_argument(
        "--strip-prefix",
        default=os.environ.get("LAB_PREFIX", ""),
        help="removed from the front of the namespace name (default: $LAB_PREFIX)",
    )
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--bind", default="0.0.0.0")
    parser.add_argument(
        "--wait",
        type=float,
        default=0.5,
        help="seconds to wait for a request before answering with the bare name",
    )
    args = parser.parse_args()

    name = server_name(args)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
    try:
        server = Server((args.bind, args.port), Handler)
    except OSError as e:
        print("lab-responder: cannot listen on %s:%d: %s" % (args.bind, args.port, e),
              file=sys.stderr)
        return 1
    server.answer = (name + "\n").encode()
    server.wait = args.wait
    print("lab-responder: %s answering on %s:%d" % (name, args.bind, args.port),
          file=sys.stderr, flush=True)
    try:
        server.serve_forever(poll_interval=0.5)
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
