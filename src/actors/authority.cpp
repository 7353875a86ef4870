#include "actors/authority.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <stdexcept>

namespace remoteable::detail {

const std::shared_ptr<const Grant>& full_grant() {
  static const auto grant = std::make_shared<const Grant>();
  return grant;
}

Authenticator::Digest Authenticator::digest(std::string_view text) {
  Digest out{};
  unsigned int size = 0;
  if (EVP_Digest(text.data(), text.size(), out.data(), &size, EVP_sha256(), nullptr) != 1 || size != out.size())
    throw std::runtime_error("SHA-256 failed");
  return out;
}

std::shared_ptr<const Grant> Authenticator::grant_for(const std::string& principal) {
  if (principal.empty()) throw std::invalid_argument("ServerAuth: a principal name must not be empty");
  auto& g = grants_[principal];
  if (!g) {
    auto it = options_.authorities.find(principal);
    g = std::make_shared<const Grant>(Grant{principal, it == options_.authorities.end() ? Authority{} : it->second});
  }
  return g;
}

Authenticator::Authenticator(const ServerAuth& auth) : options_(auth) {
  if (options_.max_failures == 0) throw std::invalid_argument("ServerAuth::max_failures must be at least 1");
  if (options_.max_tracked_addresses == 0) throw std::invalid_argument("ServerAuth::max_tracked_addresses must be at least 1");
  for (auto& [token, principal] : options_.tokens) {
    if (token.empty()) throw std::invalid_argument("ServerAuth: a token must not be empty (principal '" + principal + "')");
    if (token.size() > options_.max_token_bytes)
      throw std::invalid_argument("ServerAuth: the token of principal '" + principal + "' is longer than max_token_bytes (" +
                                  std::to_string(options_.max_token_bytes) + ")");
    tokens_.emplace_back(digest(token), grant_for(principal));
  }
  for (auto& [subject, principal] : options_.certificates) certificates_.emplace(subject, grant_for(principal));
  for (auto& [principal, authority] : options_.authorities) grant_for(principal);  // checks the name
}

std::shared_ptr<const Grant> Authenticator::check_token(std::string_view token) const {
  if (token.empty() || token.size() > options_.max_token_bytes) return nullptr;
  auto d = digest(token);
  // No early exit: every digest is compared, and the match is kept without a branch on it.
  std::size_t match = tokens_.size();
  for (std::size_t i = 0; i < tokens_.size(); ++i) {
    std::size_t equal = CRYPTO_memcmp(d.data(), tokens_[i].first.data(), d.size()) == 0;
    match = equal * i + (1 - equal) * match;
  }
  return match < tokens_.size() ? tokens_[match].second : nullptr;
}

std::shared_ptr<const Grant> Authenticator::for_certificate(std::string_view subject) const {
  if (subject.empty()) return nullptr;
  auto it = certificates_.find(std::string(subject));
  return it == certificates_.end() ? nullptr : it->second;
}

bool Authenticator::limited(const std::string& address, std::chrono::steady_clock::time_point now, spdlog::logger& log) {
  std::lock_guard lock(failures_mutex_);
  return limited_locked(address, now, log);
}

void Authenticator::failed(const std::string& address, std::chrono::steady_clock::time_point now) {
  std::lock_guard lock(failures_mutex_);
  failed_locked(address, now);
}

bool Authenticator::attempt(const std::string& address, std::chrono::steady_clock::time_point now, spdlog::logger& log) {
  std::lock_guard lock(failures_mutex_);
  if (limited_locked(address, now, log)) return false;
  failed_locked(address, now);
  return true;
}

void Authenticator::succeeded(const std::string& address) {
  std::lock_guard lock(failures_mutex_);
  auto it = failures_.find(address);
  if (it == failures_.end()) return;  // forgotten meanwhile (its window ended, or evicted)
  if (it->second.count <= 1) failures_.erase(it);
  else --it->second.count;
}

bool Authenticator::limited_locked(const std::string& address, std::chrono::steady_clock::time_point now, spdlog::logger& log) {
  auto it = failures_.find(address);
  if (it == failures_.end()) return false;
  auto& f = it->second;
  if (now - f.window_start >= options_.failure_window) {
    failures_.erase(it);  // the window is over: a fresh start
    return false;
  }
  if (f.count < options_.max_failures) return false;
  if (!f.reported) {
    f.reported = true;
    log.warn("refusing authentication from {}: {} failed attempts within {} ms (limit ServerAuth::max_failures); "
             "refusing unchecked until the window ends", address, f.count, options_.failure_window.count());
  }
  return true;
}

void Authenticator::failed_locked(const std::string& address, std::chrono::steady_clock::time_point now) {
  auto it = failures_.find(address);
  if (it != failures_.end() && now - it->second.window_start >= options_.failure_window) {
    failures_.erase(it);
    it = failures_.end();
  }
  if (it == failures_.end()) {
    if (failures_.size() >= options_.max_tracked_addresses) {
      // Full: forget the windows that are over, and if none is, the oldest one.
      std::erase_if(failures_, [&](const auto& entry) { return now - entry.second.window_start >= options_.failure_window; });
      if (failures_.size() >= options_.max_tracked_addresses)
        failures_.erase(std::min_element(failures_.begin(), failures_.end(), [](const auto& a, const auto& b) {
          return a.second.window_start < b.second.window_start;
        }));
    }
    it = failures_.emplace(address, Failures{0, now, false}).first;
  }
  ++it->second.count;
}

void ReadOnlyObjects::add(const Object& o) {
  if (!o.ptr) return;
  std::lock_guard lock(mutex_);
  if (entries_.size() >= sweep_at_) {
    std::erase_if(entries_, [](const auto& entry) { return entry.second.expired(); });
    sweep_at_ = std::max<std::size_t>(1024, 2 * entries_.size());
  }
  entries_[Key{o.ptr.get(), o.type}] = o.ptr;
  count_.store(entries_.size(), std::memory_order_release);
}

}  // namespace remoteable::detail
