// Damerau-Levenshtein in its restricted form (optimal string alignment):
// typed words are short, so the O(|a| x |b|) table is three rows of a few
// dozen entries.
#include "util/edit_distance.hpp"

#include <algorithm>
#include <cctype>

namespace portmatrix {

std::size_t
edit_distance(std::string_view a, std::string_view b)
{
  std::vector<std::size_t> before(b.size() + 1);
  std::vector<std::size_t> previous(b.size() + 1);
  std::vector<std::size_t> current(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) previous[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    current[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      current[j] = std::min({previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        current[j] = std::min(current[j], before[j - 2] + 1);
      }
    }
    std::swap(before, previous);
    std::swap(previous, current);
  }
  return previous[b.size()];
}

namespace {

std::string
lower(std::string_view text)
{
  std::string out(text);
  for (auto& c : out) c = char(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

} // namespace

std::optional<std::string>
closest(std::string_view word, const std::vector<std::string>& candidates)
{
  auto typed = lower(word);
  auto bare = std::string_view(typed).substr(std::min(typed.find_first_not_of('-'), typed.size()));
  std::size_t limit = std::clamp<std::size_t>(bare.size() / 3, 1, 3);
  std::optional<std::string> best;
  std::size_t best_distance = limit + 1;
  for (const auto& candidate : candidates) {
    auto distance = edit_distance(typed, lower(candidate));
    if (distance < best_distance) {
      best = candidate;
      best_distance = distance;
    }
  }
  if (best || bare.size() < 3) return best;
  std::optional<std::string> only;
  for (const auto& candidate : candidates) {
    if (!lower(candidate).starts_with(typed)) continue;
    if (only) return std::nullopt; // a prefix of several: no guess
    only = candidate;
  }
  return only;
}

std::string
did_you_mean(std::string_view word, const std::vector<std::string>& candidates)
{
  auto guess = closest(word, candidates);
  return guess ? "; did you mean '" + *guess + "'?" : "";
}

} // namespace portmatrix
