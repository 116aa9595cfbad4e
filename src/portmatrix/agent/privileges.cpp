// Raw prctl/capset/seccomp: no library, so the static build needs nothing
// more. The seccomp program is classic BPF over seccomp_data: the
// architecture first (a call made through another ABI is refused), then one
// comparison per allowed system call number.
#include "agent/privileges.hpp"

#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/securebits.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <vector>

#include <fmt/format.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#endif

namespace portmatrix {
namespace {

#if defined(__x86_64__)
constexpr std::uint32_t k_audit_arch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
constexpr std::uint32_t k_audit_arch = AUDIT_ARCH_AARCH64;
#else
#error "confine(): add this architecture's AUDIT_ARCH"
#endif

// What the agent, glibc (threads, the resolver, malloc) and OpenSSL (the CA
// store, randomness) call after set-up. A call only some architectures have
// is listed under #ifdef.
const std::vector<long>&
allowed_calls()
{
  static const std::vector<long> calls = {
    // event loop, timers, signals
    SYS_epoll_wait, SYS_epoll_pwait, SYS_epoll_ctl, SYS_epoll_create1, SYS_timerfd_create, SYS_timerfd_settime,
    SYS_timerfd_gettime, SYS_eventfd2, SYS_signalfd4, SYS_ppoll, SYS_pselect6, SYS_clock_gettime, SYS_clock_getres,
    SYS_clock_nanosleep, SYS_nanosleep, SYS_gettimeofday, SYS_rt_sigprocmask, SYS_rt_sigaction, SYS_rt_sigreturn,
    SYS_sigaltstack, SYS_restart_syscall,
    // identify's streams swallow their own SIGPIPE (sigpending, sigtimedwait)
    SYS_rt_sigpending, SYS_rt_sigtimedwait, SYS_rt_sigsuspend,
    // sockets (probes, listeners' connections, control, egress, capture)
    SYS_socket, SYS_socketpair, SYS_connect, SYS_bind, SYS_listen, SYS_accept, SYS_accept4, SYS_shutdown,
    SYS_getsockname, SYS_getpeername, SYS_setsockopt, SYS_getsockopt, SYS_sendto, SYS_recvfrom, SYS_sendmsg,
    SYS_recvmsg, SYS_sendmmsg, SYS_recvmmsg,
    // files and descriptors (CA store, resolver files, /proc/sys conntrack counts)
    SYS_read, SYS_write, SYS_readv, SYS_writev, SYS_pread64, SYS_close, SYS_openat, SYS_newfstatat, SYS_fstat,
    SYS_statx, SYS_lseek, SYS_getdents64, SYS_faccessat, SYS_faccessat2, SYS_readlinkat, SYS_fcntl, SYS_ioctl,
    SYS_dup, SYS_dup3, SYS_pipe2, SYS_fstatfs, SYS_statfs, SYS_getcwd,
    // memory
    SYS_brk, SYS_mmap, SYS_munmap, SYS_mremap, SYS_mprotect, SYS_madvise,
    // threads (egress, owner identification) and process
    SYS_clone, SYS_clone3, SYS_futex, SYS_set_robust_list, SYS_get_robust_list, SYS_rseq, SYS_set_tid_address,
    SYS_gettid, SYS_getpid, SYS_getppid, SYS_tgkill, SYS_exit, SYS_exit_group, SYS_sched_yield,
    SYS_sched_getaffinity, SYS_getuid, SYS_geteuid, SYS_getgid, SYS_getegid, SYS_getresuid, SYS_getresgid,
    SYS_prlimit64, SYS_getrlimit, SYS_setrlimit, SYS_uname, SYS_sysinfo, SYS_getrandom, SYS_membarrier, SYS_capget,
#ifdef SYS_open
    SYS_open, SYS_stat, SYS_lstat, SYS_access, SYS_readlink, SYS_poll, SYS_select, SYS_pipe, SYS_dup2,
    SYS_epoll_create, SYS_arch_prctl, SYS_time,
#endif
  };
  return calls;
}

void
on_forbidden_call(int, siginfo_t* info, void*)
{
  // Only calls the filter allows, and nothing that allocates.
  char message[160];
  int length = std::snprintf(message, sizeof message,
                             "portmatrix agent: system call %d is not allowed after set-up (seccomp); stopping\n",
                             info->si_syscall);
  if (length > 0) {
    auto written = ::write(STDERR_FILENO, message, std::size_t(length));
    (void)written;
  }
  ::_exit(k_seccomp_exit);
}

std::vector<sock_filter>
seccomp_program()
{
  std::vector<sock_filter> code;
  code.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)));
  code.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, k_audit_arch, 1, 0));
  code.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS));
  code.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)));
#if defined(__x86_64__)
  // x32 calls carry this bit: another ABI, refused.
  code.push_back(BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000u, 0, 1));
  code.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS));
#endif
  for (long call : allowed_calls()) {
    code.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, std::uint32_t(call), 0, 1));
    code.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
  }
  code.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP));
  return code;
}

constexpr std::uint64_t k_kept_capabilities = (1ull << CAP_NET_RAW) | (1ull << CAP_NET_BIND_SERVICE);

std::string
reduce_capabilities()
{
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  if (::syscall(SYS_capget, &header, data) != 0) return fmt::format("capget: {}", std::strerror(errno));
  std::uint64_t permitted = data[0].permitted | (std::uint64_t(data[1].permitted) << 32);
  // While CAP_SETPCAP is still here: root's special treatment off for good,
  // and the bounding set emptied of everything else.
  if (permitted & (1ull << CAP_SETPCAP)) {
    ::prctl(PR_SET_SECUREBITS, SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP |
                                 SECBIT_NO_SETUID_FIXUP_LOCKED | SECBIT_KEEP_CAPS_LOCKED);
    for (int capability = 0; capability <= 63; ++capability) {
      if (k_kept_capabilities & (1ull << capability)) continue;
      if (::prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) != 0 && errno == EINVAL) break; // past the last one
    }
  }
  ::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  std::uint64_t kept = permitted & k_kept_capabilities;
  for (int half = 0; half < 2; ++half) {
    data[half].effective = data[half].permitted = std::uint32_t(kept >> (32 * half));
    data[half].inheritable = 0;
  }
  if (::syscall(SYS_capset, &header, data) != 0) return fmt::format("capset: {}", std::strerror(errno));
  return {};
}

} // namespace

std::string
confine()
{
  if (auto error = reduce_capabilities(); !error.empty()) return error;
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return fmt::format("no_new_privs: {}", std::strerror(errno));
  struct sigaction action{};
  action.sa_sigaction = on_forbidden_call;
  action.sa_flags = SA_SIGINFO;
  ::sigaction(SIGSYS, &action, nullptr);
#if defined(__SANITIZE_ADDRESS__)
  // LeakSanitizer's check at exit stops the process's threads with prctl
  // and ptrace, which the allowlist refuses: in sanitizer builds (the test
  // suite's) it runs now, once, instead.
  __lsan_do_leak_check();
#endif
  auto code = seccomp_program();
  sock_fprog program{std::uint16_t(code.size()), code.data()};
  if (::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &program) != 0) {
    return fmt::format("seccomp: {}", std::strerror(errno));
  }
  return {};
}

} // namespace portmatrix
