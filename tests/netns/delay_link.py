#!/usr/bin/env python3
"""A link that delays one direction: forwards every Ethernet frame between
two interfaces of the namespace it runs in (AF_PACKET), holding the frames
that come in on the first for DELAY_MS before they go out on the second;
the other direction passes at once. As `tc qdisc add dev IF root netem
delay DELAY_MS` on the far end of the first interface would, for kernels
built without sch_netem (this workplace's). Runs until SIGTERM.

  delay_link.py DELAYED_IF OTHER_IF DELAY_MS

Prints "forwarding" once both sockets are bound. Used by
check_latency_warning.sh.
"""
import heapq
import select
import signal
import socket
import sys
import time

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
SOL_PACKET = 263
PACKET_VNET_HDR = 15  # each frame carries its virtio_net_hdr: checksum and GSO state travel with it


def main(delayed_if, other_if, delay_ms):
    delay = float(delay_ms) / 1000.0
    sockets = {}
    for name in (delayed_if, other_if):
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        # A veth frame may leave its checksum to the hardware (CHECKSUM_PARTIAL)
        # or be a GSO super-frame: read and written with its virtio_net_hdr,
        # the kernel completes it on the other side as it would have.
        sock.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
        sock.bind((name, 0))
        sock.setblocking(False)
        sockets[name] = sock
    out_of = {delayed_if: sockets[other_if], other_if: sockets[delayed_if]}
    running = [True]
    signal.signal(signal.SIGTERM, lambda *_: running.__setitem__(0, False))
    print("forwarding", flush=True)
    waiting = []  # (due, sequence, frame)
    sequence = 0
    by_fd = {sock.fileno(): name for name, sock in sockets.items()}
    while running[0]:
        now = time.monotonic()
        while waiting and waiting[0][0] <= now:
            _, _, frame = heapq.heappop(waiting)
            try:
                sockets[other_if].send(frame)
            except OSError:
                pass
        timeout = max(0.0, waiting[0][0] - now) if waiting else 0.2
        try:
            ready, _, _ = select.select(list(sockets.values()), [], [], min(timeout, 0.2))
        except InterruptedError:
            continue
        for sock in ready:
            name = by_fd[sock.fileno()]
            for _ in range(256):
                try:
                    frame, address = sock.recvfrom(65535)
                except (BlockingIOError, InterruptedError):
                    break
                if address[2] == PACKET_OUTGOING:
                    continue  # what we sent ourselves
                if name == delayed_if:
                    sequence += 1
                    heapq.heappush(waiting, (time.monotonic() + delay, sequence, frame))
                else:
                    try:
                        out_of[name].send(frame)
                    except OSError:
                        pass


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
