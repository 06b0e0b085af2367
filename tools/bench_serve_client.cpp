// The load generator of tools/bench-serve.sh: C clients (threads, one connection per request) send
// N requests to a running `medgpt serve` on loopback, a deterministic mix of kinds:
//   chat, chat_stream, completion        well-formed: a complete answer (200, usage, finish_reason)
//   malformed                            broken JSON, wrong types, values out of range: 400
//   oversized                            a body past --max-body-bytes: 413 payload_too_large
//   wrong_key                            another API key: 401 invalid_api_key
//   disconnect                           a stream dropped after its first event
//   slow_reader                          a stream read 20 ms per event: still complete
// Prints throughput, latency percentiles by kind, outcomes that were not the expected one (by kind
// and what happened), and the server's resident memory (VmRSS of --pid) at 10%, 50% and 100% of
// the requests. Exit 1 on any unexpected outcome, a server that stopped answering, or resident
// memory that grew more than --rss-growth-pct from the 10% mark to the end.
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <numeric>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>
#include <nlohmann/json.hpp>

using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

struct Args {
  std::string host = "127.0.0.1";
  int port = 0;
  std::string api_key;
  long requests = 10000;
  int clients = 64;
  long max_body_bytes = 1 << 20;
  int max_tokens = 16;
  int pid = 0;
  double rss_growth_pct = 10;
};

const std::vector<std::string> kKinds = {"chat", "chat_stream", "completion", "malformed", "oversized", "wrong_key", "disconnect", "slow_reader"};
const std::vector<int> kWeights = {30, 22, 10, 10, 4, 8, 8, 8};

const std::vector<std::string> kQuestions = {"高血压需要做哪些检查？", "糖尿病患者饮食要注意什么？", "感冒发烧吃什么药？",
                                             "What are the symptoms of anemia?", "头痛持续一周怎么办？", "How is asthma treated?"};

struct Result {
  std::string kind, outcome;  // outcome "expected" or what went wrong
  double seconds = 0;
  long tokens = 0;
};

long rss_kib(int pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  return -1;
}

// An error body as OpenAI sends it, with the expected code (or type).
bool api_error(const httplib::Result& r, int status, const std::string& code) {
  if (!r || r->status != status) return false;
  const json j = json::parse(r->body, nullptr, false);
  return j.is_object() && j.contains("error") && j["error"].is_object() && j["error"].value("message", "") != "" &&
         (j["error"]["code"] == code || j["error"]["type"] == code);
}

std::string describe(const httplib::Result& r) {
  if (!r) return "no response (" + httplib::to_string(r.error()) + ")";
  return "HTTP " + std::to_string(r->status);
}

class Bench {
 public:
  explicit Bench(const Args& a) : a_(a) {}

  Result one(long i) {
    std::mt19937_64 rng(static_cast<std::uint64_t>(i) * 0x9E3779B97F4A7C15ull + 1);
    const int total = std::accumulate(kWeights.begin(), kWeights.end(), 0);
    int pick = static_cast<int>(rng() % static_cast<std::uint64_t>(total));
    std::size_t k = 0;
    while (pick >= kWeights[k]) pick -= kWeights[k++];
    Result res;
    res.kind = kKinds[k];
    const std::string q = kQuestions[rng() % kQuestions.size()];
    // Mostly greedy, some sampled: requests with other options land in other batches.
    json body = {{"messages", json::array({{{"role", "user"}, {"content", q}}})}, {"max_tokens", a_.max_tokens}, {"temperature", rng() % 4 ? 0.0 : 0.7}};
    httplib::Client cli(a_.host, a_.port);
    cli.set_read_timeout(120, 0);
    httplib::Headers auth = {{"Authorization", "Bearer " + a_.api_key}};
    const auto t0 = Clock::now();
    if (res.kind == "chat" || res.kind == "completion") {
      const bool chat = res.kind == "chat";
      if (!chat) body = {{"prompt", q}, {"max_tokens", a_.max_tokens}, {"temperature", 0}};
      auto r = cli.Post(chat ? "/v1/chat/completions" : "/v1/completions", auth, body.dump(), "application/json");
      res.outcome = check_answer(r, chat, res.tokens);
    } else if (res.kind == "malformed") {
      static const std::vector<std::string> bad = {
          R"({"messages": [)", "[1, 2]", "", R"({"messages": []})", R"({"messages": [{"role": "user", "content": "hi"}], "max_tokens": "many"})",
          R"({"messages": [{"role": "user", "content": "hi"}], "temperature": 9})", R"({"messages": [{"role": "user", "content": "hi"}], "n": 3})",
          R"({"messages": [{"role": "user", "content": 5}]})", R"({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 100000})",
          R"({"messages": [{"role": "user", "content": "hi"}], "stop": [1, 2]})", "{\"messages\": [{\"role\": \"user\", \"content\": \"\xff\xfe\"}]}"};
      auto r = cli.Post("/v1/chat/completions", auth, bad[rng() % bad.size()], "application/json");
      res.outcome = api_error(r, 400, "invalid_request_error") ? "expected" : "malformed: " + describe(r);
    } else if (res.kind == "oversized") {
      std::string big = R"({"prompt": ")" + std::string(static_cast<std::size_t>(a_.max_body_bytes) + 1000, 'a') + R"("})";
      auto r = cli.Post("/v1/completions", auth, big, "application/json");
      res.outcome = api_error(r, 413, "payload_too_large") ? "expected" : "oversized: " + describe(r);
    } else if (res.kind == "wrong_key") {
      auto r = cli.Post("/v1/chat/completions", {{"Authorization", "Bearer not-" + a_.api_key}}, body.dump(), "application/json");
      res.outcome = api_error(r, 401, "invalid_api_key") ? "expected" : "wrong key: " + describe(r);
    } else {
      body["stream"] = true;
      res.outcome = stream(cli, auth, body, res.kind == "disconnect", res.kind == "slow_reader", res.tokens);
    }
    res.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    return res;
  }

 private:
  std::string check_answer(const httplib::Result& r, bool chat, long& tokens) {
    if (!r || r->status != 200) return "answer: " + describe(r);
    const json j = json::parse(r->body, nullptr, false);
    if (!j.is_object() || !j.contains("choices") || !j.contains("usage")) return "answer: not a completion object";
    const json& c = j["choices"][0];
    const bool text = chat ? c["message"]["content"].is_string() : c["text"].is_string();
    tokens = j["usage"].value("completion_tokens", -1L);
    if (!text || tokens < 1 || tokens > a_.max_tokens || (c["finish_reason"] != "stop" && c["finish_reason"] != "length"))
      return "answer: incomplete completion object";
    return "expected";
  }

  std::string stream(httplib::Client& cli, const httplib::Headers& auth, const json& body, bool drop, bool slow, long& tokens) {
    httplib::Request req;
    req.method = "POST";
    req.path = "/v1/chat/completions";
    req.headers = auth;
    req.headers.emplace("Content-Type", "application/json");
    req.body = body.dump();
    std::string got;
    bool dropped = false;
    req.content_receiver = [&](const char* data, std::size_t n, std::uint64_t, std::uint64_t) {
      got.append(data, n);
      if (drop && got.find("\n\n") != std::string::npos) {  // the first event came: hang up
        dropped = true;
        return false;
      }
      if (slow) std::this_thread::sleep_for(std::chrono::milliseconds(20));
      return true;
    };
    auto r = cli.send(req);
    if (drop) return dropped ? "expected" : "disconnect: " + (r ? "HTTP " + std::to_string(r->status) + " ended before the first event" : describe(r));
    if (!r || r->status != 200) return "stream: " + describe(r);
    // Every event parses; the last is [DONE] and the one before it carries the finish_reason.
    std::size_t at = 0;
    std::vector<std::string> events;
    while (at < got.size()) {
      const std::size_t end = got.find("\n\n", at);
      if (end == std::string::npos) return "stream: an event without its blank line";
      const std::string e = got.substr(at, end - at);
      if (e.rfind("data: ", 0) != 0) return "stream: a line that is not data:";
      events.push_back(e.substr(6));
      at = end + 2;
    }
    if (events.size() < 3 || events.back() != "[DONE]") return "stream: no [DONE] at the end";
    for (std::size_t i = 0; i + 1 < events.size(); ++i) {
      const json j = json::parse(events[i], nullptr, false);
      if (!j.is_object() || !j.contains("choices")) return "stream: an event that is not a chunk";
      if (j["choices"][0]["delta"].contains("content") && !j["choices"][0]["delta"]["content"].get<std::string>().empty()) ++tokens;
      if (i + 2 == events.size() && j["choices"][0]["finish_reason"].is_null()) return "stream: no finish_reason";
    }
    return "expected";
  }

  const Args& a_;
};

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t i = std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5));
  return v[i];
}

int usage() {
  std::cerr << "usage: bench_serve_client --port P --api-key K [--requests 10000] [--clients 64] [--max-body-bytes B]\n"
               "                          [--max-tokens 16] [--pid SERVER_PID] [--rss-growth-pct 10]\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--host") a.host = v;
    else if (k == "--port") a.port = std::stoi(v);
    else if (k == "--api-key") a.api_key = v;
    else if (k == "--requests") a.requests = std::stol(v);
    else if (k == "--clients") a.clients = std::stoi(v);
    else if (k == "--max-body-bytes") a.max_body_bytes = std::stol(v);
    else if (k == "--max-tokens") a.max_tokens = std::stoi(v);
    else if (k == "--pid") a.pid = std::stoi(v);
    else if (k == "--rss-growth-pct") a.rss_growth_pct = std::stod(v);
    else return usage();
  }
  if (argc % 2 == 0 || a.port <= 0 || a.api_key.empty() || a.requests < 1 || a.clients < 1) return usage();

  Bench bench(a);
  std::atomic<long> next{0}, done{0};
  std::mutex mu;
  std::vector<Result> results;
  std::map<int, long> rss;  // percent done -> VmRSS KiB
  const auto t0 = Clock::now();
  std::vector<std::thread> clients;
  for (int c = 0; c < a.clients; ++c)
    clients.emplace_back([&] {
      for (long i; (i = next++) < a.requests;) {
        Result r = bench.one(i);
        const long d = ++done;
        std::lock_guard<std::mutex> lock(mu);
        results.push_back(std::move(r));
        for (const int pct : {10, 50, 100})
          if (d == std::max(1L, a.requests * pct / 100) && a.pid > 0) rss[pct] = rss_kib(a.pid);
      }
    });
  for (auto& t : clients) t.join();
  const double wall = std::chrono::duration<double>(Clock::now() - t0).count();

  // Report.
  std::map<std::string, std::vector<double>> latency;
  std::map<std::string, long> sent, tokens;
  std::map<std::pair<std::string, std::string>, long> unexpected;
  long generated = 0, answers = 0, bad = 0;
  for (const auto& r : results) {
    ++sent[r.kind];
    if (r.outcome != "expected") {
      ++unexpected[{r.kind, r.outcome}];
      ++bad;
      continue;
    }
    latency[r.kind].push_back(r.seconds);
    tokens[r.kind] += r.tokens;
    if (r.kind == "chat" || r.kind == "chat_stream" || r.kind == "completion" || r.kind == "slow_reader") {
      generated += r.tokens;
      ++answers;
    }
  }
  std::printf("bench-serve: %ld requests from %d clients in %.1f s: %.1f requests/s, %.1f answers/s, %.0f generated tokens/s\n", a.requests,
              a.clients, wall, static_cast<double>(a.requests) / wall, static_cast<double>(answers) / wall, static_cast<double>(generated) / wall);
  std::printf("%-12s %7s %9s %11s %9s %9s\n", "kind", "sent", "expected", "unexpected", "p50 ms", "p99 ms");
  for (const auto& k : kKinds) {
    const auto& l = latency[k];
    std::printf("%-12s %7ld %9zu %11ld %9.1f %9.1f\n", k.c_str(), sent[k], l.size(), sent[k] - static_cast<long>(l.size()), 1e3 * percentile(l, 0.5),
                1e3 * percentile(l, 0.99));
  }
  for (const auto& [what, n] : unexpected) std::printf("unexpected: %s: %s (%ld)\n", what.first.c_str(), what.second.c_str(), n);
  int status = bad ? 1 : 0;
  if (a.pid > 0) {
    httplib::Client cli(a.host, a.port);
    auto h = cli.Get("/health");
    const bool alive = h && h->status == 200;
    std::printf("server after the run: %s\n", alive ? "answers /health" : "does not answer /health");
    if (!alive) status = 1;
    const double growth = rss.count(10) && rss[10] > 0 ? 100.0 * static_cast<double>(rss[100] - rss[10]) / static_cast<double>(rss[10]) : 0;
    std::printf("server resident memory: %.1f MiB at 10%%, %.1f MiB at 50%%, %.1f MiB at 100%% of the requests (%+.1f%% from 10%%)\n",
                static_cast<double>(rss[10]) / 1024, static_cast<double>(rss[50]) / 1024, static_cast<double>(rss[100]) / 1024, growth);
    if (growth > a.rss_growth_pct) {
      std::printf("bench-serve: resident memory grew %.1f%% (more than %.1f%%)\n", growth, a.rss_growth_pct);
      status = 1;
    }
  }
  std::printf("bench-serve: %ld unexpected outcomes\n", bad);
  return status;
}
