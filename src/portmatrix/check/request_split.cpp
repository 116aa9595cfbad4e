// Splitting by measure, not by a guess of a target's size: the parts are
// cut evenly, each measured, and a part over the bound is cut again, so
// addresses of any length and the envelope's escaping are all counted.
#include "check/request_split.hpp"

#include <algorithm>

namespace portmatrix {

namespace {

ProbeRequest
part_of(const ProbeRequest& request, std::size_t first, std::size_t last)
{
  ProbeRequest part = request;
  part.targets.assign(request.targets.begin() + std::ptrdiff_t(first), request.targets.begin() + std::ptrdiff_t(last));
  return part;
}

void
split_into(const ProbeRequest& request, std::size_t first, std::size_t last, std::size_t max_bytes,
           const std::function<std::size_t(const ProbeRequest&)>& encoded_size, std::vector<ProbeRequest>& parts)
{
  auto part = part_of(request, first, last);
  auto size = encoded_size(part);
  if (size <= max_bytes || last - first <= 1) {
    parts.push_back(std::move(part));
    return;
  }
  // Enough pieces that each should fit, with a tenth to spare; each is measured again.
  auto pieces = std::max<std::size_t>(2, size / (max_bytes - max_bytes / 10) + 1);
  auto count = last - first;
  for (std::size_t i = 0; i < pieces; ++i) {
    auto from = first + count * i / pieces, to = first + count * (i + 1) / pieces;
    if (from < to) split_into(request, from, to, max_bytes, encoded_size, parts);
  }
}

} // namespace

std::vector<ProbeRequest>
split_probe_request(const ProbeRequest& request, std::size_t max_bytes,
                    const std::function<std::size_t(const ProbeRequest&)>& encoded_size)
{
  std::vector<ProbeRequest> parts;
  split_into(request, 0, request.targets.size(), max_bytes, encoded_size, parts);
  return parts;
}

void
join_probe_reply(ProbeReply& whole, ProbeReply part)
{
  // rtts runs beside targets, one list per target, and is optional in a part.
  whole.rtts.resize(whole.targets.size());
  part.rtts.resize(part.targets.size());
  whole.rtts.insert(whole.rtts.end(), std::make_move_iterator(part.rtts.begin()),
                    std::make_move_iterator(part.rtts.end()));
  whole.targets.insert(whole.targets.end(), std::make_move_iterator(part.targets.begin()),
                       std::make_move_iterator(part.targets.end()));
  whole.held.time += part.held.time;
  if (part.held.fullest.count >= whole.held.fullest.count) whole.held.fullest = part.held.fullest;
}

} // namespace portmatrix
