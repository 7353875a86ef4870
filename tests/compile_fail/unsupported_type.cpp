// Must not compile: a binding that names a type the library cannot carry stops at its
// registration line with one static_assert naming the problem (tests/CMakeLists.txt checks
// the compiler's output for it, and for the absence of the errors that used to follow).

#include <list>
#include <map>
#include <vector>

#include <remoteable/registry.hpp>

struct Widget {
  std::size_t count(const std::vector<std::list<int>>& lists) const { return lists.size(); }
  int first(const std::map<double, int>& m) const { return m.empty() ? 0 : m.begin()->second; }
};

int main() {
  remoteable::Registry types;
#if defined(REMOTEABLE_CASE_CONTAINER)
  types.class_<Widget>("Widget").method("count", &Widget::count);
#elif defined(REMOTEABLE_CASE_MAP_KEY)
  types.class_<Widget>("Widget").method("first", &Widget::first);
#endif
}
