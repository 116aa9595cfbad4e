#include "model/provable.hpp"

namespace portmatrix {

bool
has_probe(Protocol protocol)
{
  return protocol == Protocol::tcp || protocol == Protocol::udp || protocol == Protocol::ipip;
}

} // namespace portmatrix
