# PORTMATRIX_STATIC: a self-contained portmatrix (scripts/build-static.sh).
# glibc, libstdc++, OpenSSL (libssl.a, libcrypto.a from libssl-dev) and
# yaml-cpp (libyaml-cpp.a from libyaml-cpp-dev) are linked in, fmt is used
# header-only; nlohmann-json and CLI11 are header-only anyway. The binary is
# stripped. Included before find_package(OpenSSL); sets
#   PORTMATRIX_YAML_CPP, PORTMATRIX_FMT   the targets portmatrix_lib links
#   PORTMATRIX_LINKAGE                    "static", for --version
# and portmatrix_link_static(TARGET) for the executable.
#
# glibc's linker warns that getaddrinfo (egress) and the NSS functions need
# "the shared libraries from the glibc version used for linking" at run time.
# Those warnings come from ld, not the compiler: PORTMATRIX_WERROR (-Werror)
# does not turn them into errors. glibc 2.34 and later has the `files` and
# `dns` services built in, so names resolve through /etc/hosts and DNS
# without any library; main.cpp restricts the hosts lookups to those two, so
# no other NSS module (sssd, mdns, ...) is ever loaded (README, "A
# self-contained binary"). The dlopen and gethostbyname warnings come from
# libcrypto.a (its DSO and BIO code), which portmatrix does not call.

set(OPENSSL_USE_STATIC_LIBS TRUE)

find_library(PORTMATRIX_YAML_CPP_ARCHIVE NAMES libyaml-cpp.a REQUIRED
             DOC "yaml-cpp's static library (libyaml-cpp-dev)")
add_library(portmatrix_yaml_cpp_static STATIC IMPORTED)
set_target_properties(portmatrix_yaml_cpp_static PROPERTIES IMPORTED_LOCATION ${PORTMATRIX_YAML_CPP_ARCHIVE})

set(PORTMATRIX_YAML_CPP portmatrix_yaml_cpp_static)
set(PORTMATRIX_FMT fmt::fmt-header-only)
set(PORTMATRIX_LINKAGE static)

function(portmatrix_link_static target)
  # Unused sections dropped, symbols stripped: the size the issue bounds (20 MB).
  target_compile_options(portmatrix_lib PRIVATE -ffunction-sections -fdata-sections)
  target_link_options(${target} PRIVATE -static -s -Wl,--gc-sections)
  # main.cpp: names through glibc's built-in files and dns services only.
  target_compile_definitions(${target} PRIVATE PORTMATRIX_STATIC)
endfunction()
