// Constructors of the concrete transports (internal to src/client; use OpenSource /
// OpenDestination from transport.h).
#pragma once

#include <memory>

#include "client/transport.h"

namespace berth::client {

Result<std::unique_ptr<ImageSource>> OpenRegistrySource(const ImageLocation& loc,
                                                        ClientContext& ctx);
Result<std::unique_ptr<ImageDestination>> OpenRegistryDestination(const ImageLocation& loc,
                                                                  ClientContext& ctx);
Result<std::unique_ptr<ImageSource>> OpenOciLayoutSource(const ImageLocation& loc,
                                                         ClientContext& ctx);
Result<std::unique_ptr<ImageDestination>> OpenOciLayoutDestination(const ImageLocation& loc,
                                                                   ClientContext& ctx);
Result<std::unique_ptr<ImageSource>> OpenDockerArchiveSource(const ImageLocation& loc,
                                                             ClientContext& ctx);
Result<std::unique_ptr<ImageDestination>> OpenDockerArchiveDestination(const ImageLocation& loc,
                                                                       ClientContext& ctx);

}  // namespace berth::client
