#pragma once
// remoteable: remote objects for C++20. The one header users include.
//
// Server side: Registry (which types are exposed and how), Server / ThreadedServer.
// Client side: Client::connect, Handle (pipelined operations, awaitable evaluations), Value,
// sync::Client for blocking code, block_on. Every failure is a RemoteError with a kind.

#include "actors/registry.hpp"
#include "actors/server.hpp"
#include "proxy/client.hpp"
#include "proxy/deadline.hpp"
#include "proxy/handle.hpp"
#include "proxy/sync.hpp"
#include "proxy/value.hpp"
#include "rpc/endpoint.hpp"
#include "rpc/error.hpp"
