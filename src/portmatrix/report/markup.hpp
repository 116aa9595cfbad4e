// Small pieces every report shares: terminal colour and XML escaping.
#pragma once

#include <string>
#include <string_view>

namespace portmatrix {

enum class Colour { off, on };

// `text` wrapped in the ANSI SGR `code` ("32" green, "1;31" bold red) when on.
std::string paint(Colour colour, std::string_view code, const std::string& text);

// Text safe in XML attributes and content (control characters dropped).
std::string xml_escape(std::string_view text);

} // namespace portmatrix
