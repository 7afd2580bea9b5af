#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""zmtp-spam: a hostile ZeroMQ peer for the integration tests, speaking
ZMTP 3.0 (NULL mechanism) on a plain socket, so that it keeps nothing of
what it sends (a libzmq SUB or XSUB would keep every subscription itself).

  zmtp-spam.py subscriptions ENDPOINT N LENGTH HOLD
      as a SUB: send N distinct subscriptions of LENGTH bytes to the hub's
      XPUB side, then stay HOLD seconds (or until the hub hangs up);
  zmtp-spam.py frame ENDPOINT BYTES
      as a PUB: send one frame of BYTES bytes to the hub's XSUB side.

ENDPOINT is tcp://HOST:PORT or ipc://PATH. Prints one line saying what was
sent and whether the hub closed the connection; exit status 0, 2 on bad
usage or when it cannot connect.
"""
import socket
import struct
import sys
import time


def connect(endpoint):
    if endpoint.startswith("tcp://"):
        host, port = endpoint[6:].rsplit(":", 1)
        s = socket.create_connection((host, int(port)))
    elif endpoint.startswith("ipc://"):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(endpoint[6:])
    else:
        raise ValueError(endpoint)
    return s


def recv_exact(s, n):
    b = b""
    while len(b) < n:
        chunk = s.recv(n - len(b))
        if not chunk:
            raise ConnectionError("closed")
        b += chunk
    return b


def frame(flags, body):
    if len(body) < 256:
        return bytes([flags, len(body)]) + body
    return bytes([flags | 0x02]) + struct.pack(">Q", len(body)) + body


def handshake(s, socket_type):
    greeting = b"\xff" + b"\x00" * 8 + b"\x7f" + b"\x03\x00" + b"NULL".ljust(20, b"\x00") + b"\x00" + b"\x00" * 31
    s.sendall(greeting)
    recv_exact(s, 64)
    prop = b"\x0bSocket-Type" + struct.pack(">I", len(socket_type)) + socket_type
    s.sendall(frame(0x04, b"\x05READY" + prop))
    # The peer's READY command.
    flags = recv_exact(s, 1)[0]
    n = struct.unpack(">Q", recv_exact(s, 8))[0] if flags & 0x02 else recv_exact(s, 1)[0]
    recv_exact(s, n)


def subscriptions(endpoint, n, length, hold):
    s = connect(endpoint)
    handshake(s, b"SUB")
    sent = 0
    closed = False
    try:
        batch = []
        for i in range(n):
            head = b"spam%d." % i
            batch.append(frame(0, b"\x01" + (head + b"x" * length)[:length]))
            if len(batch) == 256:
                s.sendall(b"".join(batch))
                sent += len(batch)
                batch = []
        if batch:
            s.sendall(b"".join(batch))
            sent += len(batch)
        s.settimeout(hold)
        end = time.monotonic() + hold
        while time.monotonic() < end:
            if not s.recv(65536):
                closed = True
                break
    except socket.timeout:
        pass
    except OSError:
        closed = True
    print("sent=%d closed=%s" % (sent, "yes" if closed else "no"))


def big_frame(endpoint, size):
    s = connect(endpoint)
    handshake(s, b"PUB")
    sent = 0
    closed = False
    chunk = b"x" * (1 << 20)
    try:
        s.sendall(bytes([0x02]) + struct.pack(">Q", size))
        while sent < size:
            n = min(len(chunk), size - sent)
            s.sendall(chunk[:n])
            sent += n
        s.settimeout(2)
        if not s.recv(1):
            closed = True
    except socket.timeout:
        pass
    except OSError:
        closed = True
    print("sent=%d closed=%s" % (sent, "yes" if closed else "no"))


def main():
    try:
        if sys.argv[1] == "subscriptions":
            subscriptions(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]))
        elif sys.argv[1] == "frame":
            big_frame(sys.argv[2], int(sys.argv[3]))
        else:
            raise ValueError(sys.argv[1])
    except (IndexError, ValueError, ConnectionError, OSError) as e:
        print("zmtp-spam: %s" % e, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
