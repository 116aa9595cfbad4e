#!/usr/bin/env python3
"""Captures TCP segments to or from one port, on every interface of the
network namespace it runs in (AF_PACKET, as tcpdump would), until SIGTERM.

  tcp_capture.py capture PORT OUT     one JSON line per segment with payload:
                                      {"src", "sport", "dst", "dport", "seq", "payload" (hex)};
                                      prints "capturing" once the socket is bound
  tcp_capture.py streams OUT DST      the payload each client sent to DST:PORT, one
                                      connection per line, hex, in the order they began
  tcp_capture.py replay HOST PORT HEX sends the bytes to HOST:PORT, prints what came back (repr)

Used by the control channel scenarios (agent_*.sh): what a capture of the
control port shows, and what a replay of it gets.
"""
import json
import signal
import socket
import struct
import sys


def capture(port, out_path):
    port = int(port)
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
    sock.settimeout(0.2)
    seen = set()
    running = [True]
    signal.signal(signal.SIGTERM, lambda *_: running.__setitem__(0, False))
    print("capturing", flush=True)
    with open(out_path, "w") as out:
        while running[0]:
            try:
                frame, meta = sock.recvfrom(65535)
            except socket.timeout:
                continue
            except InterruptedError:
                continue
            if meta[0] == "lo" or len(frame) < 34 or frame[12:14] != b"\x08\x00":
                continue
            ip = frame[14:]
            ihl = (ip[0] & 15) * 4
            if ip[9] != 6:
                continue
            total = struct.unpack("!H", ip[2:4])[0]
            tcp = ip[ihl:total]
            sport, dport, seq = struct.unpack("!HHI", tcp[:8])
            if port not in (sport, dport):
                continue
            payload = tcp[(tcp[12] >> 4) * 4:]
            if not payload:
                continue
            src, dst = socket.inet_ntoa(ip[12:16]), socket.inet_ntoa(ip[16:20])
            key = (src, sport, dst, dport, seq, payload)
            if key in seen:  # the same segment seen on two interfaces (veth and bridge)
                continue
            seen.add(key)
            out.write(json.dumps({"src": src, "sport": sport, "dst": dst, "dport": dport, "seq": seq,
                                  "payload": payload.hex()}) + "\n")
            out.flush()


def streams(out_path, dst):
    host, _, port = dst.rpartition(":")
    connections = {}
    for line in open(out_path):
        s = json.loads(line)
        if s["dst"] == host and s["dport"] == int(port):
            connections.setdefault(s["sport"], {})[s["seq"]] = bytes.fromhex(s["payload"])
    for sport, segments in connections.items():
        print(b"".join(segments[seq] for seq in sorted(segments)).hex())


def replay(host, port, data):
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(bytes.fromhex(data))
        received = b""
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                received += chunk
        except (socket.timeout, ConnectionResetError):
            pass
    print(repr(received))


{"capture": capture, "streams": streams, "replay": replay}[sys.argv[1]](*sys.argv[2:])
