#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""
Hold N idle TCP connections to routerd for the integration tests.

  idle-conns.py PORT N DIR
      Open N connections (non-blocking connect: those routerd does not
      accept yet wait in its backlog) and send nothing. Writes DIR/opened
      once they are open. When DIR/close-<K> appears, closes K of them and
      writes DIR/closed-<K>. Exits when DIR/stop appears.
"""
import os
import socket
import sys
import time


def main():
    port, n, d = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        socks.append(s)
    open(os.path.join(d, "opened"), "w").close()
    done = set()
    while not os.path.exists(os.path.join(d, "stop")):
        for name in os.listdir(d):
            if name.startswith("close-") and name not in done:
                k = int(name[6:])
                for s in socks[:k]:
                    s.close()
                del socks[:k]
                done.add(name)
                open(os.path.join(d, "closed-%d" % k), "w").close()
        time.sleep(0.05)
    return 0


if __name__ == "__main__":
    sys.exit(main())
