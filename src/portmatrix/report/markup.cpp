#include "report/markup.hpp"

#include <fmt/format.h>

namespace portmatrix {

std::string
paint(Colour colour, std::string_view code, const std::string& text)
{
  return colour == Colour::on ? fmt::format("\033[{}m{}\033[0m", code, text) : text;
}

std::string
xml_escape(std::string_view text)
{
  std::string out;
  for (char c : text) {
    switch (c) {
    case '&': out += "&amp;"; break;
    case '<': out += "&lt;"; break;
    case '>': out += "&gt;"; break;
    case '"': out += "&quot;"; break;
    default:
      if (static_cast<unsigned char>(c) < 0x20 && c != '\n' && c != '\t') break;
      out += c;
    }
  }
  return out;
}

} // namespace portmatrix
