// "Who answers" on a port held by a real service: one harmless request per
// protocol tried (a TLS handshake with HTTPS GET, a plain HTTP GET, a MongoDB
// hello followed by buildInfo), in an order chosen by the port's name in the
// profile, until one answer names the service. Used by the agent for the
// ports it could not bind, and by preflight.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "identify/recognise.hpp"
#include "model/types.hpp"

namespace portmatrix {

struct Profile;

// Identifies what listens on `address`:`port`. `hint` is the port's name in
// the profile ("kube-apiserver", "etcd", "kubelet", "mongodb",
// "elasticsearch-http", "elasticsearch-transport", "apinizer-manager", ...;
// empty or any other name: a generic order). Each probe is one connection
// bounded by `timeout`; at most three probes are made, and none after a
// server that accepted and stayed silent for a whole timeout, so the call
// returns within 3 x `timeout` (1 x `timeout` for a silent server). UDP is
// not probed (no harmless request fits every UDP service): unknown.
// Never throws for anything the peer does; the result is unknown then.
Identification identify(const std::string& address, std::uint16_t port, Protocol protocol, std::string_view hint,
                        std::chrono::milliseconds timeout);

// The most bytes read from one answer; more is cut (and is then not an answer we know).
inline constexpr std::size_t k_identify_max_answer = 64 * 1024;

// The name of the port `port`/`protocol` in `profile` (overrides applied),
// the narrowest named range that holds it ("apinizer-worker" before
// "nodeport"), or empty: the hint for identify().
std::string port_hint(const Profile& profile, Protocol protocol, std::uint16_t port);

} // namespace portmatrix
