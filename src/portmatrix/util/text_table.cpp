#include "util/text_table.hpp"

#include <algorithm>

namespace portmatrix {

std::size_t
display_width(std::string_view text)
{
  std::size_t width = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\033' && i + 1 < text.size() && text[i + 1] == '[') {
      // A CSI sequence (colour): parameters and intermediates, then one final byte in @-~.
      i += 2;
      while (i < text.size() && !(text[i] >= '@' && text[i] <= '~')) ++i;
      continue;
    }
    width += (static_cast<unsigned char>(text[i]) & 0xC0) != 0x80;
  }
  return width;
}

void
TableLayout::measure(std::span<const std::string_view> row)
{
  for (std::size_t i = 0; i < row.size() && i < m_widths.size(); ++i) {
    m_widths[i] = std::max(m_widths[i], display_width(row[i]));
  }
}

void
TableLayout::append_line(std::string& out, std::span<const std::string_view> row) const
{
  const auto start = out.size();
  for (std::size_t i = 0; i < row.size() && i < m_widths.size(); ++i) {
    out += row[i];
    if (i + 1 < row.size()) out.append(m_widths[i] - display_width(row[i]) + 2, ' ');
  }
  while (out.size() > start && out.back() == ' ') out.pop_back();
  out += '\n';
}

std::string
TextTable::render() const
{
  auto cells = [](const std::vector<std::string>& row) { return std::vector<std::string_view>(row.begin(), row.end()); };
  TableLayout layout(m_header.size());
  layout.measure(cells(m_header));
  for (const auto& row : m_rows) layout.measure(cells(row));
  std::string out;
  layout.append_line(out, cells(m_header));
  for (const auto& row : m_rows) layout.append_line(out, cells(row));
  return out;
}

} // namespace portmatrix
