// How a probe's answer reads: an errno, or an ICMP error from a socket's
// error queue, turned into a ProbeState (pure: no syscalls).
#pragma once

#include <time.h> // before linux/errqueue.h, which needs struct timespec

#include <linux/errqueue.h>

#include <chrono>
#include <optional>

#include "agent/identity.hpp"
#include "probe/prober.hpp"

namespace portmatrix::probing {

// What one job found.
struct Finding
{
  ProbeState state = ProbeState::filtered;
  int error = 0;
  std::optional<Identity> responder;
  bool silent = false; // open, and no answer ever came (PortOutcome::silent)
  std::chrono::microseconds rtt{0}; // open (TCP): the handshake's round trip (0: unknown)
};

Finding found(ProbeState state, int error = 0);

// An errno from connect(), SO_ERROR, send() or recv().
Finding classify_errno(int error);

// An ICMP (or local) error taken from a socket's error queue.
Finding classify_queued_error(const sock_extended_err& queued);

// Out of fds or memory: waiting for a probe in flight to end may help.
bool is_out_of_resources(int error);

// A datagram that could not be queued now; the next resend tries again.
bool is_transient_send_error(int error);

// The errno that stands for the exception being handled (inside a catch).
int current_exception_errno();

} // namespace portmatrix::probing
