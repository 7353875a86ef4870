#include "rpc/tls.hpp"
#include <limits>
#include <algorithm>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <asio/ip/address.hpp>
#include <asio/ssl/error.hpp>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <stdexcept>

#include "rpc/asio_stream.hpp"
#include "rpc/tls_stream.hpp"

namespace remoteable::detail {
namespace {

/// Throws std::invalid_argument "TLS: cannot use WHAT 'FILE': REASON" when `ec` is set.
void check(const std::error_code& ec, const char* what, const std::string& file) {
  if (ec) throw std::invalid_argument("TLS: cannot use " + std::string(what) + " '" + file + "': " + ec.message());
}

std::shared_ptr<asio::ssl::context> make_context(asio::ssl::context::method method) {
  auto context = std::make_shared<asio::ssl::context>(method);
  // TLS 1.2 and later only; no compression, no renegotiation (a client could make the server
  // pay for handshakes on an open connection).
  SSL_CTX_set_min_proto_version(context->native_handle(), TLS1_2_VERSION);
  context->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_compression |
                       SSL_OP_NO_RENEGOTIATION);
  return context;
}

void use_identity(asio::ssl::context& context, const std::string& cert_file, const std::string& key_file) {
  std::error_code ec;
  context.use_certificate_chain_file(cert_file, ec);
  check(ec, "certificate", cert_file);
  context.use_private_key_file(key_file, asio::ssl::context::pem, ec);
  check(ec, "private key", key_file);
  if (SSL_CTX_check_private_key(context.native_handle()) != 1)
    throw std::invalid_argument("TLS: the private key '" + key_file + "' does not match the certificate '" + cert_file + "'");
}

/// What a failed certificate check means for the user, after OpenSSL's words.
const char* verdict_hint(long verdict) {
  switch (verdict) {
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN: return "unknown CA";
    case X509_V_ERR_CERT_HAS_EXPIRED: return "expired certificate";
    case X509_V_ERR_CERT_NOT_YET_VALID: return "certificate not yet valid";
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH: return "host-name mismatch";
    default: return "bad certificate";
  }
}

bool not_tls(const std::error_code& error) {
  if (error == asio::error::eof || error == asio::ssl::error::stream_truncated ||
      error == asio::error::connection_reset)
    return true;
  if (error.category() != asio::error::get_ssl_category()) return false;
  switch (ERR_GET_REASON(static_cast<unsigned long>(error.value()))) {
    case SSL_R_WRONG_VERSION_NUMBER:
    case SSL_R_HTTP_REQUEST:
    case SSL_R_PACKET_LENGTH_TOO_LONG:
    case SSL_R_UNKNOWN_PROTOCOL: return true;
    default: return false;
  }
}

}  // namespace

void set_peer_timeout(asio::ip::tcp::socket& socket, std::chrono::milliseconds timeout) {
  if (timeout.count() <= 0) return;
  using user_timeout = asio::detail::socket_option::integer<IPPROTO_TCP, TCP_USER_TIMEOUT>;
  using keep_idle = asio::detail::socket_option::integer<IPPROTO_TCP, TCP_KEEPIDLE>;
  using keep_interval = asio::detail::socket_option::integer<IPPROTO_TCP, TCP_KEEPINTVL>;
  using keep_count = asio::detail::socket_option::integer<IPPROTO_TCP, TCP_KEEPCNT>;
  auto ms = std::min<std::chrono::milliseconds::rep>(timeout.count(), std::numeric_limits<int>::max());
  auto seconds = static_cast<int>(std::max<std::chrono::milliseconds::rep>(1, ms / 1000));
  std::error_code ignored;
  socket.set_option(user_timeout(static_cast<int>(ms)), ignored);
  socket.set_option(asio::socket_base::keep_alive(true), ignored);
  socket.set_option(keep_idle(seconds), ignored);
  socket.set_option(keep_interval(std::max(1, seconds / 3)), ignored);
  socket.set_option(keep_count(3), ignored);
}

kj::Own<TransportStream> open_stream(std::shared_ptr<KjLoop> loop, Connected connected,
                                     std::shared_ptr<WireCounters> counters, std::shared_ptr<ByteCounts> bytes) {
  if (auto* plain = std::get_if<asio::ip::tcp::socket>(&connected))
    return kj::heap<AsioStream>(std::move(loop), std::move(*plain), std::move(counters), std::move(bytes));
  return kj::heap<TlsStream>(std::move(loop), std::move(std::get<std::unique_ptr<TlsConnection>>(connected)),
                             std::move(counters), std::move(bytes));
}

std::shared_ptr<asio::ssl::context> server_context(const ServerTls& options) {
  if (options.cert_file.empty() || options.key_file.empty())
    throw std::invalid_argument("TLS: ServerTls needs cert_file and key_file");
  auto context = make_context(asio::ssl::context::tls_server);
  use_identity(*context, options.cert_file, options.key_file);
  if (!options.client_ca_file.empty()) {
    std::error_code ec;
    context->load_verify_file(options.client_ca_file, ec);
    check(ec, "client CA file", options.client_ca_file);
    // Tell clients which CAs their certificate should come from.
    if (auto* names = SSL_load_client_CA_file(options.client_ca_file.c_str()))
      SSL_CTX_set_client_CA_list(context->native_handle(), names);
    auto mode = asio::ssl::verify_peer;
    if (options.require_client_cert) mode |= asio::ssl::verify_fail_if_no_peer_cert;
    context->set_verify_mode(mode);
    // Needed for session resumption with client certificates.
    static const unsigned char session_context[] = "remoteable";
    SSL_CTX_set_session_id_context(context->native_handle(), session_context, sizeof session_context - 1);
  }
  return context;
}

std::shared_ptr<asio::ssl::context> client_context(const ClientTls& options) {
  auto context = make_context(asio::ssl::context::tls_client);
  std::error_code ec;
  if (options.verify) {
    if (options.ca_file.empty()) {
      context->set_default_verify_paths(ec);
      check(ec, "the system's CAs", "default paths");
    } else {
      context->load_verify_file(options.ca_file, ec);
      check(ec, "CA file", options.ca_file);
    }
    context->set_verify_mode(asio::ssl::verify_peer);
  } else {
    context->set_verify_mode(asio::ssl::verify_none);
  }
  if (!options.cert_file.empty() || !options.key_file.empty()) use_identity(*context, options.cert_file, options.key_file);
  return context;
}

void expect_server_name(TlsSocket& stream, const std::string& name) {
  SSL* ssl = stream.native_handle();
  std::error_code ec;
  asio::ip::make_address(name, ec);
  if (!ec) {
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name.c_str());
    return;
  }
  SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  SSL_set1_host(ssl, name.c_str());
  SSL_set_tlsext_host_name(ssl, name.c_str());
}

std::string handshake_failure(TlsSocket& stream, const std::error_code& error, bool server) {
  long verdict = SSL_get_verify_result(stream.native_handle());
  if (verdict != X509_V_OK && error.category() == asio::error::get_ssl_category())
    return std::string(server ? "the client's" : "the server's") + " certificate is not accepted: " +
           X509_verify_cert_error_string(verdict) + " (" + verdict_hint(verdict) + ")";
  if (not_tls(error))
    return std::string(server ? "the client does not speak TLS" : "the server does not speak TLS (a plaintext port?)") +
           ": " + error.message();
  return error.message();
}

std::string peer_subject(TlsSocket& stream) {
  X509* cert = SSL_get1_peer_certificate(stream.native_handle());
  if (cert == nullptr) return {};
  std::string subject;
  X509_NAME* name = X509_get_subject_name(cert);
  char buffer[256];
  int n = X509_NAME_get_text_by_NID(name, NID_commonName, buffer, sizeof buffer);
  if (n > 0) {
    subject.assign(buffer, static_cast<std::size_t>(n));
  } else if (char* line = X509_NAME_oneline(name, nullptr, 0)) {
    subject = line;
    OPENSSL_free(line);
  }
  X509_free(cert);
  return subject;
}

}  // namespace remoteable::detail
