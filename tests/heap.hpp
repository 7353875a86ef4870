#pragma once
// heap_in_use(): the bytes this process has allocated and not freed, by the allocator's own
// count. Unlike the resident set it leaves out memory that malloc keeps for reuse, and, under
// AddressSanitizer, the freed memory its quarantine keeps resident (256 MiB by default): what the
// process holds, not what it once touched.

#include <malloc.h>

#include <cstddef>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define REMOTEABLE_TEST_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define REMOTEABLE_TEST_ASAN 1
#endif
#ifdef REMOTEABLE_TEST_ASAN
// From <sanitizer/allocator_interface.h>, which Debian ships apart from the compiler.
extern "C" std::size_t __sanitizer_get_current_allocated_bytes();
#endif

namespace test {

inline std::size_t heap_in_use() {
#ifdef REMOTEABLE_TEST_ASAN
  return __sanitizer_get_current_allocated_bytes();
#else
  auto m = mallinfo2();
  return m.uordblks + m.hblkhd;  // in the arenas, and in chunks of their own (mmap)
#endif
}

}  // namespace test
