#include "core/event_codec.h"

#include <openssl/evp.h>

#include <cstring>

#include "core/coding.h"

namespace timetrail {

void EncodeCanonicalEvent(const RecordedEvent& e, std::string* out) {
  out->push_back(static_cast<char>(kEventFormatVersion));
  PutFixed64(out, e.position);
  PutLengthPrefixed(out, e.stream);
  PutFixed64(out, e.revision);
  out->append(reinterpret_cast<const char*>(e.id.bytes.data()), e.id.bytes.size());
  PutLengthPrefixed(out, e.type);
  PutFixed64(out, static_cast<std::uint64_t>(e.recorded_at.micros));
  PutFixed64(out, static_cast<std::uint64_t>(e.valid_from.micros));
  PutFixed64(out, e.tx);
  PutLengthPrefixed(out, e.metadata);
  PutLengthPrefixed(out, e.data);
}

std::string EncodeStoredEvent(const RecordedEvent& e) {
  std::string out;
  out.reserve(80 + e.stream.size() + e.type.size() + e.data.size() + e.metadata.size());
  EncodeCanonicalEvent(e, &out);
  out.append(reinterpret_cast<const char*>(e.hash.data()), e.hash.size());
  return out;
}

std::string_view CanonicalPart(std::string_view stored) {
  if (stored.size() < 32) return {};
  return stored.substr(0, stored.size() - 32);
}

Result<StoredEventView> DecodeStoredEventView(std::string_view bytes) {
  StoredEventView e;
  Decoder d(bytes);
  std::uint8_t version = 0;
  std::string_view id;
  std::uint64_t recorded_at = 0, valid_from = 0;
  d.GetByte(&version);
  if (d.ok() && version != kEventFormatVersion) {
    return Status::Corruption("stored event has unknown format version " + std::to_string(version));
  }
  d.GetFixed64(&e.position);
  d.GetLengthPrefixed(&e.stream);
  d.GetFixed64(&e.revision);
  d.GetBytes(16, &id);
  d.GetLengthPrefixed(&e.type);
  d.GetFixed64(&recorded_at);
  d.GetFixed64(&valid_from);
  d.GetFixed64(&e.tx);
  d.GetLengthPrefixed(&e.metadata);
  d.GetLengthPrefixed(&e.data);
  d.GetBytes(32, &e.hash);
  if (!d.ok() || d.remaining() != 0) {
    return Status::Corruption("stored event of " + std::to_string(bytes.size()) +
                              " bytes does not decode");
  }
  std::memcpy(e.id.bytes.data(), id.data(), 16);
  e.recorded_at.micros = static_cast<std::int64_t>(recorded_at);
  e.valid_from.micros = static_cast<std::int64_t>(valid_from);
  return e;
}

RecordedEvent StoredEventView::ToEvent() const {
  RecordedEvent e;
  e.position = position;
  e.stream = stream;
  e.revision = revision;
  e.id = id;
  e.type = type;
  e.recorded_at = recorded_at;
  e.valid_from = valid_from;
  e.tx = tx;
  e.metadata = metadata;
  e.data = data;
  std::memcpy(e.hash.data(), hash.data(), 32);
  return e;
}

Result<RecordedEvent> DecodeStoredEvent(std::string_view bytes) {
  TT_ASSIGN_OR_RETURN(StoredEventView view, DecodeStoredEventView(bytes));
  return view.ToEvent();
}

Hash Sha256(std::initializer_list<std::string_view> parts) {
  // Fetching the algorithm and allocating a context cost more than hashing a small event, so
  // both are kept per thread.
  struct Context {
    EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    ~Context() {
      EVP_MD_CTX_free(ctx);
      EVP_MD_free(md);
    }
  };
  thread_local Context sha;
  Hash out{};
  unsigned int len = 0;
  EVP_DigestInit_ex(sha.ctx, sha.md, nullptr);
  for (std::string_view part : parts) EVP_DigestUpdate(sha.ctx, part.data(), part.size());
  EVP_DigestFinal_ex(sha.ctx, out.data(), &len);
  return out;
}

Hash ChainHash(const Hash& previous, std::string_view canonical) {
  return Sha256({std::string_view(reinterpret_cast<const char*>(previous.data()), previous.size()),
                 canonical});
}

}  // namespace timetrail
