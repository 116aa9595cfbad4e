// A cheap look at JSON text before a parser builds anything from it.
#pragma once

#include <cstddef>
#include <string_view>

namespace portmatrix {

// True when no array or object in `text` nests deeper than `max_depth`
// (brackets inside strings do not count). One pass, no allocation: a
// megabyte of '[' is refused in about a millisecond instead of being built
// into a megabyte-deep tree. Says nothing else about whether `text` is JSON.
bool json_depth_within(std::string_view text, std::size_t max_depth);

} // namespace portmatrix
