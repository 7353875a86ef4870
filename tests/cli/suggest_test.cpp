#include "cli/suggest.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace remoteable::cli;

TEST_CASE("similar names are typos of the word: one edit for short words, two for longer", "[suggest]") {
  std::vector<std::string> exports{"Node", "child", "five", "root"};
  CHECK(similar_names("rooot", exports) == std::vector<std::string>{"root"});
  CHECK(similar_names("roo", exports) == std::vector<std::string>{"root"});
  CHECK(similar_names("fvie", exports) == std::vector<std::string>{"five"});  // a swap is one edit
  CHECK(similar_names("chidl", exports) == std::vector<std::string>{"child"});
  CHECK(similar_names("node", exports) == std::vector<std::string>{"Node"});
  CHECK(similar_names("xyz", exports).empty());
  CHECK(similar_names("root", exports).empty());  // the word itself is no suggestion
  CHECK(similar_names("", exports).empty());
  CHECK(similar_names(std::string(65, 'r'), {std::string(64, 'r')}).empty());  // too long to try
}

TEST_CASE("similar names come closest first, at most the limit", "[suggest]") {
  std::vector<std::string> members{"values", "value", "valve", "val"};
  CHECK(similar_names("valeu", members) == std::vector<std::string>{"value", "values", "valve"});
  CHECK(similar_names("valeu", members, 1) == std::vector<std::string>{"value"});
}

TEST_CASE("the quoted name after a marker is found in an error message", "[suggest]") {
  CHECK(quoted_after("no export named 'rooot'", "no export named ") == "rooot");
  CHECK(quoted_after("'Node' has no attribute 'valu'", "has no attribute ") == "valu");
  CHECK_FALSE(quoted_after("no export named rooot", "no export named "));
  CHECK_FALSE(quoted_after("no export named 'rooot", "no export named "));
  CHECK_FALSE(quoted_after("something else", "no export named "));
}

TEST_CASE("completion finds the word before the cursor and the path before a dot", "[suggest]") {
  auto c = completion_context("x = ro");
  CHECK(c.object.empty());
  CHECK(c.prefix == "ro");
  CHECK(c.start == 4);
  c = completion_context("root.child.va");
  CHECK(c.object == "root.child");
  CHECK(c.prefix == "va");
  c = completion_context("1 + root.");
  CHECK(c.object == "root");
  CHECK(c.prefix.empty());
  c = completion_context("");
  CHECK(c.object.empty());
  CHECK(c.prefix.empty());
  // After a call or an index: completing would call again, so nothing is offered.
  CHECK(completion_context("root.child(0).va").object == ".");
  CHECK(completion_context("items[0].").object == ".");
  CHECK(completion_context("1.5.").object == ".");
}

TEST_CASE("a dotted path is names joined by dots", "[suggest]") {
  CHECK(is_dotted_path("a"));
  CHECK(is_dotted_path("a.b_2.c"));
  CHECK_FALSE(is_dotted_path(""));
  CHECK_FALSE(is_dotted_path("a..b"));
  CHECK_FALSE(is_dotted_path(".a"));
  CHECK_FALSE(is_dotted_path("a."));
  CHECK_FALSE(is_dotted_path("1a"));
  CHECK_FALSE(is_dotted_path("a(1)"));
}

TEST_CASE("did you mean lists the suggestions", "[suggest]") {
  CHECK(did_you_mean({}).empty());
  CHECK(did_you_mean({"root"}) == " did you mean 'root'?");
  CHECK(did_you_mean({"a", "b"}) == " did you mean 'a' or 'b'?");
  CHECK(did_you_mean({"a", "b", "c"}) == " did you mean 'a', 'b' or 'c'?");
}
