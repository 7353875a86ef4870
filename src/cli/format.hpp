#pragma once
// remoteable::cli format: prints values and outcomes plainly or as JSON.
//
// Plain output is Python-ish but spelled like the CLI language: `true`, `false`, `none`,
// `[1, 'a']`, `{'k': 2.5}`, `b'\x00'`, `<Node handle>` (`<handle>` when the type is unknown). At the top level a string prints as its bare
// text; nested strings are quoted so that the output reads back as a literal.
//
// JSON output is one document: none is null, floats that JSON cannot spell (nan, inf) are null,
// bytes are {"$bytes": "<base64>"}, a handle is {"$handle": true, "type": "Node"} ("type" only
// when known).
//
// Handle types: the functions that print values take the type names of the value's handles in
// the order they print them (Evaluator::handle_types); missing or empty names print untyped.
//
// Plain functions over plain data: no state, no threads.

#include <string>
#include <string_view>
#include <vector>

#include "cli/outcome.hpp"
#include <remoteable/handle.hpp>

namespace remoteable::cli {

enum class OutputStyle { plain, json };

/// The shortest text that reads back as the same double, laid out as Python's repr does:
/// `1.0`, `0.0001`, `1e-05`, `1e+16`, `-0.0`, `inf`, `nan`.
std::string format_float(double value);

/// A literal that the CLI lexer reads back as `value` (handles print as `<Type handle>`).
std::string format_repr(const Value& value, const std::vector<std::string>& handle_types = {});

/// Plain top-level printing: like format_repr, except that a string is its bare text.
std::string format_plain(const Value& value, const std::vector<std::string>& handle_types = {});

/// One JSON document, without whitespace.
std::string format_json(const Value& value, const std::vector<std::string>& handle_types = {});

/// `text` as a JSON string literal (quoted, escaped; invalid UTF-8 becomes U+FFFD).
std::string json_quote(std::string_view text);

/// The text to write to stdout for an outcome, newline-terminated; empty for NoResult (and for
/// an empty browse in plain style).
std::string format(const Outcome& outcome, OutputStyle style,
                   const std::vector<std::string>& handle_types = {});

}  // namespace remoteable::cli
