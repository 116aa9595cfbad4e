// Entry point: the one place that turns errors into exit codes.
#include <exception>
#include <iostream>

#ifdef PORTMATRIX_STATIC
#include <nss.h>
#endif

#include "cli/cli.hpp"

int
main(int argc, char** argv)
{
#ifdef PORTMATRIX_STATIC
  // A static glibc has the `files` and `dns` services built in, but any other
  // service nsswitch.conf names (mdns4_minimal, myhostname, sss, resolve...)
  // it would dlopen from the node: a module built against the node's shared
  // glibc, loaded into ours (Debian 12's own libnss_systemd crashes a static
  // process). So a static portmatrix resolves names through /etc/hosts and
  // DNS only, whatever the hosts line says (docs/static-binary.md).
  __nss_configure_lookup("hosts", "files dns");
#endif
  try {
    return portmatrix::run_cli(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "portmatrix: internal error: " << e.what() << "\n";
  } catch (...) {
    std::cerr << "portmatrix: internal error\n";
  }
  return 2;
}
