// Plain-text tables with aligned columns, for terminal output (cells may be
// coloured: escape sequences are not counted in a column's width).
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace portmatrix {

// The column widths of a table too long to hold: measure() every row first,
// then append_line() each (the same rows, in any order). TextTable uses it.
class TableLayout
{
public:
  explicit TableLayout(std::size_t columns) : m_widths(columns, 0) {}

  void measure(std::span<const std::string_view> row);
  // Appends the row, cells padded to their column's width (in UTF-8 code
  // points), two spaces apart, the last cell not padded, no trailing space.
  void append_line(std::string& out, std::span<const std::string_view> row) const;

private:
  std::vector<std::size_t> m_widths;
};

class TextTable
{
public:
  explicit TextTable(std::vector<std::string> header) : m_header(std::move(header)) {}

  void add(std::vector<std::string> row) { m_rows.push_back(std::move(row)); }
  bool empty() const { return m_rows.empty(); }

  // Columns padded to their widest cell (in UTF-8 code points), two spaces
  // apart; the last column is not padded.
  std::string render() const;

private:
  std::vector<std::string> m_header;
  std::vector<std::vector<std::string>> m_rows;
};

// Width of UTF-8 text in code points (arrows in headings count as one);
// ANSI escape sequences (colour) take no room.
std::size_t display_width(std::string_view text);

} // namespace portmatrix
