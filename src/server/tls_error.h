// OpenSSL's reason for a failed TLS call, shared by the server and the CLI's client.
#ifndef TIMETRAIL_SERVER_TLS_ERROR_H_
#define TIMETRAIL_SERVER_TLS_ERROR_H_

#include <openssl/err.h>

#include <string>

#include <boost/asio/ssl/error.hpp>
#include <boost/system/error_code.hpp>

namespace timetrail::server {

// "no start line", "certificate verify failed", "key values mismatch"...: asio's own message
// for TLS errors is often just "asio.ssl error".
inline std::string TlsErrorReason(const boost::system::error_code& ec) {
  if (ec.category() == boost::asio::error::get_ssl_category()) {
    if (const char* reason = ERR_reason_error_string(static_cast<unsigned long>(ec.value()))) {
      return reason;
    }
  }
  return ec.message();
}

}  // namespace timetrail::server

#endif  // TIMETRAIL_SERVER_TLS_ERROR_H_
