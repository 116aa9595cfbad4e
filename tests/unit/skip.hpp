// The one way a unit test gives up for want of something outside it (a seed
// file, an installed program): outside CI it is skipped, saying why; under CI
// (CI=true), where everything must be present, it fails naming what is missing.
#pragma once

#include <cstdlib>
#include <string_view>

#include <gtest/gtest.h>

namespace portmatrix::test {

inline bool
under_ci()
{
  const char* ci = std::getenv("CI");
  return ci && std::string_view(ci) == "true";
}

} // namespace portmatrix::test

// Use as a statement, in a test or its SetUp():
//   if (!have_program("etcd")) PORTMATRIX_SKIP() << "etcd is not installed";
// (GTEST_SKIP() and FAIL() both return an AssertHelper's result; this picks the kind.)
#define PORTMATRIX_SKIP()                                                                                              \
  return ::testing::internal::AssertHelper(::portmatrix::test::under_ci() ? ::testing::TestPartResult::kFatalFailure   \
                                                                          : ::testing::TestPartResult::kSkip,          \
                                           __FILE__, __LINE__,                                                         \
                                           ::portmatrix::test::under_ci() ? "CI=true, where nothing may be skipped:"  \
                                                                          : "skipped:") = ::testing::Message()
