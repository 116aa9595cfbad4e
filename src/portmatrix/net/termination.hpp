// How a long-running process (the agent, the test tools that stand in for
// it) learns it must stop: SIGINT and SIGTERM blocked and read from a
// descriptor its event loop watches; SIGPIPE ignored (a peer that hangs up
// is a write error, not a death).
#pragma once

#include "net/fd.hpp"

namespace portmatrix {

// Blocks SIGINT and SIGTERM for the calling thread (and the threads it
// starts afterwards), ignores SIGPIPE, and returns a non-blocking signalfd
// that becomes readable when either arrives.
Fd termination_signals();

} // namespace portmatrix
