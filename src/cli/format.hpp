#pragma once
// remoteable::cli format: prints values and outcomes plainly or as JSON.
//
// Plain output is Python-ish but spelled like the CLI language: `true`, `false`, `none`,
// `[1, 'a']`, `{'k': 2.5}`, `b'\x00'`, `<handle>`. At the top level a string prints as its bare
// text; nested strings are quoted so that the output reads back as a literal.
//
// JSON output is one document: none is null, floats that JSON cannot spell (nan, inf) are null,
// bytes are {"$bytes": "<base64>"}, a handle is {"$handle": true}.
//
// Plain functions over plain data: no state, no threads.

#include <string>

#include "cli/outcome.hpp"
#include <remoteable/handle.hpp>

namespace remoteable::cli {

enum class OutputStyle { plain, json };

/// The shortest text that reads back as the same double, laid out as Python's repr does:
/// `1.0`, `0.0001`, `1e-05`, `1e+16`, `-0.0`, `inf`, `nan`.
std::string format_float(double value);

/// A literal that the CLI lexer reads back as `value` (handles print as `<handle>`).
std::string format_repr(const Value& value);

/// Plain top-level printing: like format_repr, except that a string is its bare text.
std::string format_plain(const Value& value);

/// One JSON document, without whitespace.
std::string format_json(const Value& value);

/// The text to write to stdout for an outcome, newline-terminated; empty for NoResult (and for
/// an empty browse in plain style).
std::string format(const Outcome& outcome, OutputStyle style);

}  // namespace remoteable::cli
