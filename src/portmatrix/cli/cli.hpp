// Argument parsing and the subcommands. Each subcommand returns its exit
// status (0 ok, 1 a required flow fails, 2 usage/input error); main() only
// forwards it.
#pragma once

namespace portmatrix {

int run_cli(int argc, char** argv);

} // namespace portmatrix
