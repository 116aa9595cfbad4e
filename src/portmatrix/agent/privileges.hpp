// Least privilege for the agent (finding 9). After set-up (control listener,
// probe listeners, the inbound capture, the owners of held ports read from
// /proc), confine() reduces the process to what the agent still does:
//
// - uid 0 stays, with only CAP_NET_RAW (the outbound capture opens an
//   AF_PACKET socket whenever this agent probes) and CAP_NET_BIND_SERVICE
//   (kept for a listener re-bound below 1024); every other capability leaves
//   the effective, permitted, inheritable, ambient and bounding sets, and
//   SECBIT_NOROOT is locked, so no execve could bring them back.
//   Dropping to an unprivileged uid would lose the files root owns that the
//   agent reads later (the conntrack counters are world-readable; the CA
//   store too), but buys nothing over the empty capability sets here.
// - no_new_privs.
// - a seccomp allowlist of the system calls the agent, glibc and OpenSSL
//   make after set-up (event loop, sockets, threads for egress and owner
//   identification, files for the CA store and resolver). Anything else
//   (execve, ptrace, mount, ...) stops the agent with a message naming the
//   call: "portmatrix agent: system call 59 is not allowed ...", exit 159.
#pragma once

#include <string>

namespace portmatrix {

// The exit status of an agent stopped by its seccomp filter.
constexpr int k_seccomp_exit = 159;

// Applies all three to the whole process (every thread: call it before any
// is started, capabilities are per thread). Returns what could not be done,
// empty on success. Without root the capability step keeps what it has
// of the two; the rest still applies.
std::string confine();

} // namespace portmatrix
