#pragma once
// The rule for export names, shared by Server::export_* and the wire's Registry.attach: a name
// must be one that a client can write, so that no export is unreachable.

#include <string>
#include <string_view>

namespace remoteable {

/// Why `name` cannot be an export name, or an empty string if it can. A name is one identifier
/// of the command-line client's grammar (src/cli/lexer.cpp): an ASCII letter or '_', then ASCII
/// letters, digits or '_', and not one of its keywords (true, True, false, False, none, None,
/// not), which it reads as literals and operators rather than names.
std::string export_name_problem(std::string_view name);

}  // namespace remoteable
