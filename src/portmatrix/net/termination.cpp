#include "net/termination.hpp"

#include <sys/signalfd.h>

#include <csignal>

namespace portmatrix {

Fd
termination_signals()
{
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigprocmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  return Fd(::signalfd(-1, &signals, SFD_NONBLOCK | SFD_CLOEXEC));
}

} // namespace portmatrix
