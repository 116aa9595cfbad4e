// Classification of what a probe met (pure): an errno, or the ICMP type and
// code an IP_RECVERR socket queued, each to a ProbeState.
#include "probe/classify.hpp"

#include <netinet/icmp6.h>
#include <netinet/ip_icmp.h>

#include <cerrno>
#include <new>

namespace portmatrix::probing {

Finding
found(ProbeState state, int error)
{
  return Finding{state, error, std::nullopt};
}

Finding
classify_errno(int error)
{
  switch (error) {
  case 0: return found(ProbeState::open);
  case ECONNREFUSED: return found(ProbeState::refused, error);
  case EHOSTUNREACH:
  case ENETUNREACH: return found(ProbeState::unreachable, error);
  case EPERM:
  case EACCES: return found(ProbeState::blocked_locally, error);
  case ETIMEDOUT: return found(ProbeState::filtered); // the kernel gave up before we did: no answer
  default: return found(ProbeState::error, error);
  }
}

// An ICMP (or local) error taken from a socket's error queue.
Finding
classify_queued_error(const sock_extended_err& queued)
{
  auto error = int(queued.ee_errno);
  if (queued.ee_origin == SO_EE_ORIGIN_ICMP && queued.ee_type == ICMP_DEST_UNREACH) {
    switch (queued.ee_code) {
    case ICMP_PORT_UNREACH: return found(ProbeState::refused, ECONNREFUSED);
    case ICMP_NET_ANO:
    case ICMP_HOST_ANO:
    case ICMP_PKT_FILTERED: return found(ProbeState::admin_prohibited, error);
    default: return found(ProbeState::unreachable, error);
    }
  }
  if (queued.ee_origin == SO_EE_ORIGIN_ICMP6 && queued.ee_type == ICMP6_DST_UNREACH) {
    switch (queued.ee_code) {
    case ICMP6_DST_UNREACH_NOPORT: return found(ProbeState::refused, ECONNREFUSED);
    case ICMP6_DST_UNREACH_ADMIN:
    case 5: // source address failed ingress/egress policy (RFC 4443)
    case 6: // reject route to destination (RFC 4443)
      return found(ProbeState::admin_prohibited, error);
    default: return found(ProbeState::unreachable, error);
    }
  }
  return classify_errno(error);
}

bool
is_out_of_resources(int error)
{
  return error == EMFILE || error == ENFILE || error == ENOBUFS || error == ENOMEM;
}

bool
is_transient_send_error(int error)
{
  return error == EAGAIN || error == EWOULDBLOCK || error == ENOBUFS || error == EINTR;
}

int
current_exception_errno()
{
  try {
    throw;
  } catch (const std::bad_alloc&) {
    return ENOMEM;
  } catch (...) {
    return EIO;
  }
}

} // namespace portmatrix::probing
