#pragma once
// The rule for export names, shared by Server::export_* and the wire's Registry.attach: a name
// must be one that a client can write, so that no export is unreachable.

#include <cstddef>
#include <string>
#include <string_view>

namespace remoteable {

/// The longest export name, in bytes. Names attached by clients are kept until detached, up to
/// `max_attached` of them: without a bound on each, their memory would be bounded only by the
/// message size.
inline constexpr std::size_t max_export_name = 255;

/// Why `name` cannot be an export name, or an empty string if it can. A name is one identifier
/// of the command-line client's grammar (src/cli/lexer.cpp): an ASCII letter or '_', then ASCII
/// letters, digits or '_', and not one of its keywords (true, True, false, False, none, None,
/// not), which it reads as literals and operators rather than names; at most `max_export_name`
/// bytes.
std::string export_name_problem(std::string_view name);

}  // namespace remoteable
