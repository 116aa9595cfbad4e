#include "egress/result_json.hpp"

namespace portmatrix {

nlohmann::json
result_json(const EgressResult& r)
{
  return {{"host", r.target.host},
          {"port", r.target.port.port},
          {"scheme", to_string(r.target.port.scheme)},
          {"entry", r.target.entry},
          {"purpose", r.target.purpose},
          {"verdict", to_string(r.verdict)},
          {"detail", r.detail},
          {"addresses", r.addresses},
          {"proxy", r.proxy},
          {"elapsed_ms", r.elapsed.count()}};
}

} // namespace portmatrix
