// Performs every step of the walkthrough against a walkthrough_server, printing each result.
//   walkthrough_client [HOST:PORT]      (default 127.0.0.1:3000)

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <iostream>

#include <remoteable/remoteable.hpp>

namespace {

std::string join(const std::vector<std::string>& names) {
  std::string out = "{";
  for (auto& n : names) out += (out.size() > 1 ? ", " : "") + ("\"" + n + "\"");
  return out + "}";
}

asio::awaitable<void> walkthrough(remoteable::Endpoint endpoint) {
  using remoteable::Client;
  auto executor = co_await asio::this_coro::executor;
  auto client = co_await Client::connect(executor, endpoint);
  auto step = [](const std::string& what, const auto& result) { std::cout << what << "  ->  " << result << std::endl; };

  auto root = client.fetch("root");
  step("client.browse()", join(co_await client.browse()));
  step("root.attr(\"value\").as<int64>()", co_await root.attr("value").as<std::int64_t>());
  step("root.attr(\"value\").str()", "\"" + co_await root.attr("value").str() + "\"");
  co_await root.set("value", 4);
  step("root.set(\"value\", 4); root.attr(\"value\")", co_await root.attr("value").as<std::int64_t>());
  auto child = root.call("child", 0);
  step("root.call(\"child\", 0).attr(\"value\")", co_await child.attr("value").as<std::int64_t>());
  step("(child.attr(\"value\") + 4)", co_await (child.attr("value") + 4).as<std::int64_t>());
  step("(child == root.call(\"child\", 0)).truthy()",
       (co_await (child == root.call("child", 0)).truthy()) ? "true" : "false");
  auto ref = client.store(5);
  step("client.store(5).as<int64>()", co_await ref.as<std::int64_t>());
  co_await client.attach(ref, "exported_by_client");
  step("(client.fetch(\"exported_by_client\") == ref).truthy()",
       (co_await (client.fetch("exported_by_client") == ref).truthy()) ? "true" : "false");
  step("client.browse()", join(co_await client.browse()));
  co_await root.set("value", ref);
  step("root.set(\"value\", ref); root.attr(\"value\")", co_await root.attr("value").as<std::int64_t>());
  co_await client.detach("exported_by_client");
}

}  // namespace

int main(int argc, char** argv) {
  int status = 0;
  try {
    auto endpoint = remoteable::Endpoint::parse(argc > 1 ? argv[1] : "127.0.0.1:3000");
    asio::io_context context;
    asio::co_spawn(context, walkthrough(endpoint), [&](std::exception_ptr e) {
      if (!e) return;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& error) {
        std::cerr << "walkthrough_client: " << error.what() << std::endl;
        status = 1;
      }
    });
    context.run();
  } catch (const std::exception& e) {
    std::cerr << "walkthrough_client: " << e.what() << std::endl;
    return 1;
  }
  return status;
}
