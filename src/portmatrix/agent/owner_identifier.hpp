// Who answers on the ports the agent could not bind (a running cluster's
// kube-apiserver, etcd, MongoDB, ...), found with identify/ off the event
// loop: identify() blocks for up to a few timeouts, so each owner gets its
// own short-lived thread, and the results come back to the loop through an
// eventfd. The control server keeps answering meanwhile; a hello before the
// results arrive simply has no `service` yet.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "identify/identify.hpp"
#include "net/event_loop.hpp"

namespace portmatrix {

inline constexpr std::size_t k_max_identified_owners = 32; // the rest stay unidentified
inline constexpr std::chrono::milliseconds k_owner_identify_timeout{1000};

class OwnerIdentifier
{
public:
  struct Job
  {
    Protocol protocol = Protocol::tcp;
    std::uint16_t port = 0;
    std::string hint; // the port's name in the profile
  };
  // Runs on the loop's thread, once per job (the first k_max_identified_owners), in any order.
  using Done = std::function<void(const Job& job, const Identification& result)>;

  // Starts identifying every job at `address`. `loop` must outlive this object.
  OwnerIdentifier(EventLoop& loop, std::string address, std::vector<Job> jobs, std::chrono::milliseconds timeout,
                  Done done);
  // Waits for threads still probing (each ends within identify()'s bound).
  ~OwnerIdentifier();
  OwnerIdentifier(const OwnerIdentifier&) = delete;
  OwnerIdentifier& operator=(const OwnerIdentifier&) = delete;

  bool finished() const;

private:
  struct Impl;
  std::unique_ptr<Impl> m_impl;
};

} // namespace portmatrix
