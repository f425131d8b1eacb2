// Percent-decoding as the AWS protocols need it: valid %XX escapes are decoded and
// anything else (a lone '%', a bad hex digit) is kept literally, as SigV4's
// canonicalisation and S3's encoding-type=url listings expect. (The HTTP layer's strict
// decoder, which refuses bad escapes, is http/message.h's.)
#pragma once

#include <string>
#include <string_view>

namespace berth {

// `plus_is_space`: '+' decodes to ' ' (form encoding, and S3's url-encoded listings).
std::string PercentDecodeLenient(std::string_view s, bool plus_is_space = false);

}  // namespace berth
