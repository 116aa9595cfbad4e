// Entry point: the one place that turns errors into exit codes.
#include <exception>
#include <iostream>

#include "cli/cli.hpp"

int
main(int argc, char** argv)
{
  try {
    return portmatrix::run_cli(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "portmatrix: internal error: " << e.what() << "\n";
  } catch (...) {
    std::cerr << "portmatrix: internal error\n";
  }
  return 2;
}
