// A small value-or-error type (std::expected arrives with C++23; clang 14,
// which builds the fuzzers, cannot use libstdc++'s yet).
#pragma once

#include <utility>
#include <variant>

namespace portmatrix {

template <class E>
struct Unexpected
{
  E error;
};

template <class E>
Unexpected<std::decay_t<E>>
unexpected(E&& error)
{
  return {std::forward<E>(error)};
}

// Holds either a T or an E. Accessing the wrong alternative is a programming
// error (std::bad_variant_access), never an input error.
template <class T, class E>
class [[nodiscard]] Expected
{
public:
  Expected(T value) : m_value(std::in_place_index<0>, std::move(value)) {}
  template <class G>
  Expected(Unexpected<G> error) : m_value(std::in_place_index<1>, E(std::move(error.error)))
  {
  }

  explicit operator bool() const { return m_value.index() == 0; }
  bool has_value() const { return m_value.index() == 0; }

  T& value() & { return std::get<0>(m_value); }
  const T& value() const& { return std::get<0>(m_value); }
  T&& value() && { return std::get<0>(std::move(m_value)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  E& error() & { return std::get<1>(m_value); }
  const E& error() const& { return std::get<1>(m_value); }

private:
  std::variant<T, E> m_value;
};

} // namespace portmatrix
