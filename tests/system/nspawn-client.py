#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""TCP client for test-nspawn.sh, run inside the container (python3-minimal).

  nspawn-client.py request LINE
      Send LINE to 127.0.0.1:5678 and print the reply line.
  nspawn-client.py load SECONDS THREADS
      THREADS clients, each connecting again and again for SECONDS: send
      {"command":"status"} and read the one reply line. Prints
      "load: N connections, R refused, F failed" (refused: ECONNREFUSED;
      failed: any other error, or no complete reply) and the first errors.
"""
import socket
import sys
import threading
import time

ADDR = ("127.0.0.1", 5678)


def exchange(line, timeout=20):
    with socket.create_connection(ADDR, timeout=timeout) as s:
        s.sendall(line.encode() + b"\n")
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                raise EOFError("connection closed after %d bytes" % len(buf))
            buf += chunk
        return buf.decode().rstrip("\n")


def load(seconds, threads):
    lock = threading.Lock()
    counts = {"n": 0, "refused": 0, "failed": 0}
    errors = []
    end = time.monotonic() + seconds

    def worker():
        while time.monotonic() < end:
            try:
                reply = exchange('{"command":"status"}')
                kind = None if '"ok": true' in reply or '"ok":true' in reply else "failed"
                err = None if kind is None else "reply: " + reply[:200]
            except ConnectionRefusedError as e:
                kind, err = "refused", repr(e)
            except Exception as e:  # reset, EOF, timeout
                kind, err = "failed", repr(e)
            with lock:
                counts["n"] += 1
                if kind:
                    counts[kind] += 1
                    if len(errors) < 5:
                        errors.append(err)

    ts = [threading.Thread(target=worker) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    print("load: %d connections, %d refused, %d failed" % (counts["n"], counts["refused"], counts["failed"]))
    for e in errors:
        print("error: " + e)


def main(argv):
    if len(argv) == 2 and argv[0] == "request":
        print(exchange(argv[1]))
        return 0
    if len(argv) == 3 and argv[0] == "load":
        load(float(argv[1]), int(argv[2]))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
