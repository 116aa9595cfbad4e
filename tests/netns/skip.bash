# shellcheck shell=bash
# The one way a scenario gives up for want of something (root, a tool,
# working namespaces): outside CI it says "skipped" and why and exits 77, which
# ctest reports as skipped; under CI (CI=true) nothing may be missing, so it
# fails, exit 1, naming what is missing. Sourced by lib.sh, check_lib.bash and
# any scenario that stands alone.
skip() {
  if [[ ${CI:-} == true ]]; then
    echo "FAILED (CI=true, where nothing may be skipped): $*" >&2
    exit 1
  fi
  echo "SKIPPED: $*"
  exit 77
}
