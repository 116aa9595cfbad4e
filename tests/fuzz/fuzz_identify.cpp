// Fuzz target: what identify reads from a server it does not trust. Arbitrary
// bytes go through the OP_MSG and BSON decoders, the MongoDB recogniser, the
// HTTP response parser and the HTTP recogniser. Nothing may crash or throw.
#include <cstdint>
#include <string_view>

#include "identify/bson.hpp"
#include "identify/recognise.hpp"

extern "C" int
LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
  using namespace portmatrix;
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  (void)bson::message_length(bytes);
  for (std::int32_t id : {1, 2}) {
    if (auto body = bson::op_msg_body(bytes, id)) {
      if (auto fields = bson::decode(*body)) (void)recognise_mongodb(*fields, &*fields);
    }
  }
  if (auto fields = bson::decode(bytes)) (void)recognise_mongodb(*fields, nullptr);
  (void)http_response_complete(bytes);
  if (auto response = parse_http_response(bytes)) {
    Certificate certificate{"cn", "issuer", {"name"}, "TLSv1.3", false};
    (void)recognise_http(*response, nullptr);
    (void)recognise_http(*response, &certificate);
  }
  return 0;
}
