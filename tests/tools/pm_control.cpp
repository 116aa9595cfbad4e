// pm_control: the test helper that speaks the agent's control protocol as
// check does (check/control_client), one request at a time, so the
// network-namespace scenarios can send requests check never would (issue 16:
// a huge observed request, duplicated probe targets, a budget of a day).
//
//   pm_control TOKEN_FILE ADDRESS PORT NODE TYPE BODY_FILE
//       Asks the agent at ADDRESS:PORT (node NODE) for hello first (a check
//       of 60 s), for its instance and window, then sends TYPE with the body
//       read from BODY_FILE ("-": "{}"; for TYPE hello, the hello itself),
//       then `done` (as check does). Prints "ok MS" or "error MS MESSAGE"
//       (MS: the request's round trip, hello excluded), then the reply's
//       body on the next line.
//       TYPE hold: hello only, with the check's deadline from BODY_FILE ("-":
//       60 s); prints "window N", then holds the window open until SIGTERM
//       or SIGINT, and sends `done` then (a check that runs that long; killed
//       instead, it is a check whose `done` never came).
//
// Exit status: 0 an answer (ok or error), 1 no answer in 60 s, 2 usage.
#include <signal.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <sstream>

#include "agent/control_protocol.hpp"
#include "agent/messages.hpp"
#include "check/control_client.hpp"
#include "crypto/hmac.hpp"

using namespace portmatrix;

namespace {

ControlResult
ask(EventLoop& loop, const Token& token, const SocketAddress& agent, const ControlRequest& request)
{
  std::optional<ControlResult> result;
  ControlCall call(loop, token, agent, request, EventLoop::Clock::now() + std::chrono::seconds(60),
                   [&](ControlResult r) { result = std::move(r); });
  while (!result) loop.run_once(std::chrono::milliseconds(100));
  return std::move(*result);
}

} // namespace

int
main(int argc, char** argv)
{
  if (argc != 7) {
    std::cerr << "usage: pm_control TOKEN_FILE ADDRESS PORT NODE TYPE BODY_FILE\n";
    return 2;
  }
  std::string error;
  auto token = Token::load(argv[1], error);
  auto agent = SocketAddress::parse(argv[2], std::uint16_t(std::stoi(argv[3])));
  if (!token || !agent) {
    std::cerr << "pm_control: " << (token ? std::string("bad address") : error) << "\n";
    return 2;
  }
  std::string node = argv[4], type = argv[5], body = "{}";
  if (std::string(argv[6]) != "-") {
    std::ifstream file(argv[6]);
    std::stringstream text;
    text << file.rdbuf();
    body = text.str();
  }
  EventLoop loop;
  std::string instance;
  std::uint64_t window = 0;
  if (type != "hello") {
    auto check = to_json(HelloRequest{std::chrono::seconds(60)});
    auto hello = ask(loop, *token, *agent, make_request("hello", type == "hold" && body != "{}" ? body : check, node));
    auto reply = hello && hello->ok ? parse_hello_reply(hello->body) : unexpected(std::string("no hello"));
    if (!reply) {
      std::cout << "error 0 hello: " << (hello ? hello->body : hello.error()) << "\n\n";
      return hello ? 0 : 1;
    }
    instance = reply->instance;
    window = reply->window;
  }
  if (type == "hold") {
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    sigprocmask(SIG_BLOCK, &signals, nullptr);
    std::cout << "window " << window << std::endl;
    int signal = 0;
    sigwait(&signals, &signal);
    type = "done";
    body = "{}";
  }
  auto started = std::chrono::steady_clock::now();
  auto result = ask(loop, *token, *agent, make_request(type, body, node, instance, window));
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count();
  if (window != 0 && type != "done") (void)ask(loop, *token, *agent, make_request("done", "{}", node, instance, window));
  if (!result) {
    std::cout << "error " << ms << " " << result.error() << "\n\n";
    return 1;
  }
  std::cout << (result->ok ? "ok " : "error ") << ms << (result->ok ? "" : " " + result->body) << "\n" << result->body << "\n";
  return 0;
}
