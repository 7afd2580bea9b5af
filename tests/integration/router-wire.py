#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""
A small client of routerd's TCP protocol (DESIGN.md "TCP wire") for the
integration tests.

  router-wire.py PORT send [--notices N] [--timeout SEC]
      Send stdin's lines (raw, each with a newline) in one write, i.e.
      pipelined, then print one reply line per request line, then N notice
      lines. Exit 1 if a line does not come within the timeout.
  router-wire.py PORT flood N
      Send N status requests from a writer thread without reading, then read
      the N replies; print "replies=N ok=N".
  router-wire.py PORT conns N
      Open N connections at once; each places call "conn-<i>"; print
      "connections=N ok=N".
"""
import json
import socket
import sys
import threading


def connect(port, timeout):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    return s, s.makefile("rb")


def readline(f):
    line = f.readline()
    if not line.endswith(b"\n"):
        raise TimeoutError("connection closed")
    return line.decode().rstrip("\n")


def main():
    port = int(sys.argv[1])
    mode = sys.argv[2]
    args = sys.argv[3:]
    timeout = 10.0
    notices = 0
    i = 0
    rest = []
    while i < len(args):
        if args[i] == "--timeout":
            timeout = float(args[i + 1]); i += 2
        elif args[i] == "--notices":
            notices = int(args[i + 1]); i += 2
        else:
            rest.append(args[i]); i += 1

    if mode == "send":
        data = sys.stdin.buffer.read()
        lines = data.split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        s, f = connect(port, timeout)
        s.sendall(b"".join(l + b"\n" for l in lines))
        try:
            for _ in range(len(lines) + notices):
                print(readline(f), flush=True)
        except (TimeoutError, socket.timeout, OSError) as e:
            print("# no more lines: %s" % e, file=sys.stderr)
            return 1
        return 0

    if mode == "flood":
        n = int(rest[0])
        s, f = connect(port, 60)

        def writer():
            s.sendall(b'{"command":"status"}\n' * n)

        t = threading.Thread(target=writer)
        t.start()
        ok = got = 0
        try:
            for _ in range(n):
                r = json.loads(readline(f))
                got += 1
                ok += r.get("ok") is True
        except Exception as e:
            print("# %s" % e, file=sys.stderr)
        t.join()
        print("replies=%d ok=%d" % (got, ok))
        return 0 if ok == n else 1

    if mode == "conns":
        n = int(rest[0])
        socks = [connect(port, timeout) for _ in range(n)]
        for i, (s, _) in enumerate(socks):
            s.sendall(json.dumps({"command": "call", "id": "conn-%d" % i}).encode() + b"\n")
        ok = 0
        for i, (_, f) in enumerate(socks):
            try:
                r = json.loads(readline(f))
                ok += r.get("ok") is True and r["messages"][0] == "Call conn-%d received" % i
            except Exception as e:
                print("# connection %d: %s" % (i, e), file=sys.stderr)
        print("connections=%d ok=%d" % (n, ok))
        return 0 if ok == n else 1

    print("unknown mode", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
