// An owned file descriptor. Every fd in portmatrix is held by one of these;
// raw fds never cross a module boundary except as `get()` for a syscall.
#pragma once

#include <unistd.h>

#include <utility>

namespace portmatrix {

class Fd
{
public:
  Fd() = default;
  explicit Fd(int fd) : m_fd(fd) {}
  Fd(Fd&& other) noexcept : m_fd(std::exchange(other.m_fd, -1)) {}
  Fd& operator=(Fd&& other) noexcept
  {
    if (this != &other) reset(std::exchange(other.m_fd, -1));
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }

  int get() const { return m_fd; }
  bool valid() const { return m_fd >= 0; }
  explicit operator bool() const { return valid(); }
  // Closes the current fd (if any) and owns `fd`.
  void reset(int fd = -1)
  {
    if (m_fd >= 0) ::close(m_fd);
    m_fd = fd;
  }
  int release() { return std::exchange(m_fd, -1); }

private:
  int m_fd = -1;
};

} // namespace portmatrix
