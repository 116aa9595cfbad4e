// What this binary is: generated at build time by cmake/build_info.cmake.
#pragma once

namespace portmatrix {

// "portmatrix VERSION (commit COMMIT, static|dynamic)": the version of the
// project, the git commit it was built from ("unknown" outside git; "-dirty"
// when the tree had changes) and how it is linked. A static string.
const char* build_info();

// True when this binary is statically linked (scripts/build-static.sh): it
// runs on a node whatever shared libraries that node has.
bool build_is_static();

} // namespace portmatrix
