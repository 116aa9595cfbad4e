// "Did you mean": how far a mistyped word is from the words it could have been.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace portmatrix {

// The optimal-string-alignment distance: insertions, deletions,
// substitutions and swaps of two adjacent characters, one each
// ("fromat" -> "format" is 1). Bytes, not characters; case matters.
std::size_t edit_distance(std::string_view a, std::string_view b);

// The candidate `word` most likely stands for, or nullopt when none is close:
// the nearest within a third of the word's length (at least 1, at most 3
// edits), else the one candidate that `word` (3 bytes or more) is a prefix
// of. Case is ignored; leading dashes are compared too ("--fromat" ->
// "--format"), so "Ports" gives "ports". Ties go to the earlier candidate.
std::optional<std::string> closest(std::string_view word, const std::vector<std::string>& candidates);

// "; did you mean 'X'?" with closest(word, candidates), or empty: the tail of
// a message about an unknown name.
std::string did_you_mean(std::string_view word, const std::vector<std::string>& candidates);

} // namespace portmatrix
