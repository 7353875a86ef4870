#pragma once
// remoteable: remote objects for C++20. The one header users include.
//
// Server side: Registry (which types are exposed and how), Server / ThreadedServer.
// Client side: Client::connect, Handle (pipelined operations, awaitable evaluations), Value,
// sync::Client for blocking code, block_on; Handle::iterate (remoteable::Iteration) and
// remoteable::Generator for sequences read in batches. Every failure is a RemoteError with a kind.

#include <remoteable/registry.hpp>
#include <remoteable/server.hpp>
#include <remoteable/client.hpp>
#include <remoteable/deadline.hpp>
#include <remoteable/handle.hpp>
#include <remoteable/iteration.hpp>
#include <remoteable/generator.hpp>
#include <remoteable/sync.hpp>
#include <remoteable/value.hpp>
#include <remoteable/endpoint.hpp>
#include <remoteable/error.hpp>
#include <remoteable/version.hpp>
