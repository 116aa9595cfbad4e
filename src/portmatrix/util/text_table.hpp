// Plain-text tables with aligned columns, for terminal output.
#pragma once

#include <string>
#include <vector>

namespace portmatrix {

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

// Width of UTF-8 text in code points (arrows in headings count as one).
std::size_t display_width(const std::string& text);

} // namespace portmatrix
