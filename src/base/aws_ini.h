// The INI format of the AWS shared files (~/.aws/credentials, ~/.aws/config) as the AWS
// CLI and botocore read it. One parser for the `berth` client's credentials and the S3
// blob store's.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <string_view>

namespace berth {

// Section → key → value. Keys are lower-cased, values trimmed; '#' and ';' start
// comment lines; "key = value" or "key=value"; indented lines after a key continue it
// (nested settings such as "s3 =\n  max_concurrent_requests = 2") and are skipped;
// keys before any section are ignored. A section name's inner whitespace is collapsed
// ("[profile  x]" is "profile x"), as botocore splits it.
using AwsIni =
    std::map<std::string, std::map<std::string, std::string, std::less<>>, std::less<>>;
AwsIni ParseAwsIni(std::string_view text);

}  // namespace berth
