#pragma once
// remoteable::cli::Outcome: what evaluating one CLI statement produced, ready to be printed.

#include <string>
#include <variant>
#include <vector>

#include <remoteable/handle.hpp>

namespace remoteable::cli {

/// A statement that acts and yields nothing: an assignment, attach(), detach().
struct NoResult {};

/// The export names `browse()` found, sorted.
struct ExportNames {
  std::vector<std::string> names;
};

/// A value (from get(), str() or bool(), or a local literal), a description, or export names.
using Outcome = std::variant<NoResult, Value, Description, ExportNames>;

}  // namespace remoteable::cli
