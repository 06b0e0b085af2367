// `medgpt serve`: an OpenAI-compatible HTTP server (MedicalGPT's openai_api.py) on cpp-httplib.
//   GET /health, GET /v1/models, POST /v1/chat/completions, POST /v1/completions
// Requests are queued to one model thread (infer::BatchWorker), which generates waiting requests
// with the same options as one batch. `stream: true` answers with server-sent events ending in
// `data: [DONE]`. Every error is an OpenAI-style JSON object with its HTTP status; nothing a client
// sends can crash the server.
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <memory>
#include <thread>
#include <nlohmann/json.hpp>

#include "app/bounded_value.hpp"
#include "app/command.hpp"
#include "app/generation_setup.hpp"
#include "data/tokenizer/stream_decoder.hpp"
#include "dist/grid.hpp"
#include "infer/batch_worker.hpp"
#include "util/error.hpp"
#include "util/log.hpp"

namespace medgpt::app {

namespace {

using nlohmann::json;

struct ApiError {
  int status;
  std::string type, message, param, code;
};

void send_error(httplib::Response& res, const ApiError& e) {
  json err = {{"message", e.message}, {"type", e.type}, {"param", e.param.empty() ? json(nullptr) : json(e.param)},
              {"code", e.code.empty() ? json(nullptr) : json(e.code)}};
  res.status = e.status;
  res.set_content(json{{"error", err}}.dump(), "application/json");
}

ApiError bad(const std::string& param, const std::string& message) { return {400, "invalid_request_error", message, param, ""}; }

// Optional typed fields of a request body.
template <class T>
T field(const json& body, const char* key, T fallback, bool (json::*is)() const, const char* type) {
  if (!body.contains(key) || body[key].is_null()) return fallback;
  if (!(body[key].*is)()) throw bad(key, std::string("'") + key + "' must be " + type);
  return body[key].get<T>();
}

// What one request asks for, after validation.
struct Ask {
  std::vector<std::int64_t> prompt;
  infer::GenerationOptions options;
  std::vector<std::string> stop;
  bool stream = false;
};

// A request's output as it is produced: the text so far (stop strings applied), new text not yet
// streamed, and whether it has ended.
struct Output {
  std::mutex mu;
  std::condition_variable cv;
  std::string text, unsent;
  bool done = false, stopped = false, cancelled = false, failed = false;
  std::int64_t tokens = 0;
};

class Server {
 public:
  Server(const po::variables_map& vm)
      : tok_(load_inference_tokenizer(vm)), tmpl_(data::ChatTemplate::get(vm["template"].as<std::string>())),
        defaults_(generation_options(vm, required(vm, "model"), tok_, &tmpl_)), model_(load_inference_model(vm)),
        worker_(model_, static_cast<std::size_t>(vm["batch-size"].as<std::int64_t>())),
        name_(vm.count("model-name") ? vm["model-name"].as<std::string>()
                                     : std::filesystem::path(required(vm, "model")).lexically_normal().filename().string()),
        api_key_(vm.count("api-key") ? vm["api-key"].as<std::string>() : "") {
    if (vm.count("system")) render_.system = vm["system"].as<std::string>();
    render_.add_generation_prompt = true;
    if (name_.empty()) name_ = "medgpt";
  }

  void routes(httplib::Server& svr) {
    svr.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      if (api_key_.empty() || req.path == "/health") return httplib::Server::HandlerResponse::Unhandled;
      if (req.get_header_value("Authorization") != "Bearer " + api_key_) {
        send_error(res, {401, "invalid_request_error", "Incorrect API key provided", "", "invalid_api_key"});
        return httplib::Server::HandlerResponse::Handled;
      }
      return httplib::Server::HandlerResponse::Unhandled;
    });
    svr.Get("/health", [](const httplib::Request&, httplib::Response& res) { res.set_content(R"({"status":"ok"})", "application/json"); });
    svr.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
      json m = {{"id", name_}, {"object", "model"}, {"created", created_}, {"owned_by", "medgpt"}};
      res.set_content(json{{"object", "list"}, {"data", json::array({m})}}.dump(), "application/json");
    });
    svr.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) { handle(req, res, true); });
    svr.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) { handle(req, res, false); });
    svr.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
      if (!res.body.empty()) return;
      if (res.status == 404) send_error(res, {404, "invalid_request_error", "Unknown path " + req.path, "", "not_found"});
      else if (res.status == 413) send_error(res, {413, "invalid_request_error", "Request body too large", "", "payload_too_large"});
      else send_error(res, {res.status, "invalid_request_error", "HTTP error " + std::to_string(res.status), "", ""});
    });
    svr.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
      std::string what = "internal error";
      try {
        std::rethrow_exception(ep);
      } catch (const std::exception& e) {
        what = e.what();
      } catch (...) {
      }
      send_error(res, {500, "server_error", what, "", ""});
    });
  }

 private:
  Ask parse(const json& body, bool chat) const {
    if (!body.is_object()) throw bad("", "the body must be a JSON object");
    Ask a;
    a.options = defaults_;
    if (chat) {
      if (!body.contains("messages") || !body["messages"].is_array() || body["messages"].empty())
        throw bad("messages", "'messages' must be a non-empty array");
      std::vector<data::ChatMessage> messages;
      for (std::size_t i = 0; i < body["messages"].size(); ++i) {
        const json& m = body["messages"][i];
        const std::string where = "messages[" + std::to_string(i) + "]";
        if (!m.is_object() || !m.contains("role") || !m["role"].is_string() || !m.contains("content") || !m["content"].is_string())
          throw bad(where, where + " must be an object with string 'role' and 'content'");
        messages.push_back({m["role"].get<std::string>(), m["content"].get<std::string>(), ""});
      }
      std::string text;
      try {
        text = tmpl_.render(messages, render_).text;
      } catch (const util::Error& e) {
        throw bad("messages", e.what());
      }
      const auto ids = tok_.encode(text);
      a.prompt.assign(ids.begin(), ids.end());
    } else {
      json p = body.contains("prompt") ? body["prompt"] : json();
      if (p.is_array() && p.size() == 1) p = p[0];
      if (!p.is_string() || p.get<std::string>().empty()) throw bad("prompt", "'prompt' must be a non-empty string");
      const auto ids = tok_.encode(p.get<std::string>());
      a.prompt.assign(ids.begin(), ids.end());
    }
    if (body.contains("n") && !(body["n"].is_number_integer() && body["n"].get<std::int64_t>() == 1)) throw bad("n", "only n = 1 is supported");
    a.stream = field<bool>(body, "stream", false, &json::is_boolean, "a boolean");
    auto& s = a.options.sampling;
    if (body.contains("temperature") && !body["temperature"].is_null()) {
      s.temperature = field<double>(body, "temperature", 1.0, &json::is_number, "a number");
      if (s.temperature < 0 || s.temperature > 2) throw bad("temperature", "'temperature' must be between 0 and 2");
      s.do_sample = s.temperature > 0;
    }
    s.top_p = field<double>(body, "top_p", s.top_p, &json::is_number, "a number");
    if (s.top_p <= 0 || s.top_p > 1) throw bad("top_p", "'top_p' must be in (0, 1]");
    s.top_k = field<std::int64_t>(body, "top_k", s.top_k, &json::is_number_integer, "an integer");
    if (s.top_k < 0) throw bad("top_k", "'top_k' must be 0 (off) or more");
    s.repetition_penalty = field<double>(body, "repetition_penalty", s.repetition_penalty, &json::is_number, "a number");
    if (!(s.repetition_penalty > 0)) throw bad("repetition_penalty", "'repetition_penalty' must be positive (1: off)");
    if (body.contains("seed") && body["seed"].is_number_integer() && body["seed"].get<std::int64_t>() < 0 && !body["seed"].is_number_unsigned())
      throw bad("seed", "'seed' must not be negative");
    a.options.seed = field<std::uint64_t>(body, "seed", a.options.seed, &json::is_number_integer, "an integer");
    const std::int64_t ctx = model_.config().max_position_embeddings, n = static_cast<std::int64_t>(a.prompt.size());
    if (n >= ctx) throw ApiError{400, "invalid_request_error", "the prompt has " + std::to_string(n) + " tokens; the context is " + std::to_string(ctx), "messages", "context_length_exceeded"};
    const char* max_key = body.contains("max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
    a.options.max_new_tokens = field<std::int64_t>(body, max_key, std::min(defaults_.max_new_tokens, ctx - n), &json::is_number_integer, "an integer");
    if (a.options.max_new_tokens < 1) throw bad(max_key, std::string("'") + max_key + "' must be at least 1");
    if (n + a.options.max_new_tokens > ctx)
      throw ApiError{400, "invalid_request_error", "prompt (" + std::to_string(n) + ") + " + max_key + " (" + std::to_string(a.options.max_new_tokens) +
                     ") exceed the context of " + std::to_string(ctx) + " tokens", max_key, "context_length_exceeded"};
    if (body.contains("stop") && !body["stop"].is_null()) {
      const json& st = body["stop"];
      if (st.is_string()) a.stop.push_back(st.get<std::string>());
      else if (st.is_array() && st.size() <= 4 && std::all_of(st.begin(), st.end(), [](const json& x) { return x.is_string(); }))
        for (const auto& x : st) a.stop.push_back(x.get<std::string>());
      else throw bad("stop", "'stop' must be a string or an array of up to 4 strings");
      a.stop.erase(std::remove(a.stop.begin(), a.stop.end(), std::string()), a.stop.end());
    }
    return a;
  }

  // Feeds decoded text into `out`, cutting at the first stop string; text that could still turn out
  // to be the start of a stop string is held back. Returns false once a stop string was hit.
  static bool feed(Output& out, const std::string& piece, const std::vector<std::string>& stop) {
    std::lock_guard<std::mutex> lock(out.mu);
    out.unsent += piece;
    for (const auto& s : stop) {
      const auto at = (out.text + out.unsent).find(s);
      if (at != std::string::npos) {
        const std::string all = (out.text + out.unsent).substr(0, at);
        out.unsent = all.substr(out.text.size());
        out.stopped = true;
        out.cv.notify_all();
        return false;
      }
    }
    out.cv.notify_all();
    return !out.cancelled;
  }

  // How much of `unsent` can go out now (none of it may be a prefix of a stop string's start).
  static std::size_t releasable(const Output& out, const std::vector<std::string>& stop) {
    if (out.done || out.stopped) return out.unsent.size();
    std::size_t keep = 0;
    for (const auto& s : stop)
      for (std::size_t k = std::min(s.size() - 1, out.unsent.size()); k > keep; --k)
        if (out.unsent.compare(out.unsent.size() - k, k, s, 0, k) == 0) {
          keep = k;
          break;
        }
    return out.unsent.size() - keep;
  }

  json usage(std::size_t prompt, std::int64_t completion) const {
    return {{"prompt_tokens", prompt}, {"completion_tokens", completion}, {"total_tokens", static_cast<std::int64_t>(prompt) + completion}};
  }

  json chunk(const std::string& id, bool chat, const std::string& text, const json& finish) const {
    json choice = {{"index", 0}, {"finish_reason", finish}};
    if (chat) choice["delta"] = text.empty() && !finish.is_null() ? json::object() : json{{"content", text}};
    else choice["text"] = text;
    return {{"id", id}, {"object", chat ? "chat.completion.chunk" : "text_completion"}, {"created", std::time(nullptr)}, {"model", name_},
            {"choices", json::array({choice})}};
  }

  void handle(const httplib::Request& req, httplib::Response& res, bool chat) {
    Ask ask;
    try {
      json body;
      try {
        body = json::parse(req.body);
      } catch (const json::exception&) {
        throw bad("", "could not parse the body as JSON");
      }
      ask = parse(body, chat);
    } catch (const ApiError& e) {
      send_error(res, e);
      return;
    }
    const std::string id = (chat ? "chatcmpl-" : "cmpl-") + std::to_string(next_id_++);
    auto out = std::make_shared<Output>();
    auto decoder = std::make_shared<data::StreamDecoder>(tok_, /*skip_special_tokens=*/true);
    const auto stop = ask.stop;
    const auto eos = ask.options.eos_ids;
    auto future = std::make_shared<std::future<infer::Completion>>(worker_.submit(ask.prompt, ask.options, [out, decoder, stop, eos](std::size_t, std::int64_t tok) {
      {
        std::lock_guard<std::mutex> lock(out->mu);
        ++out->tokens;
      }
      if (std::find(eos.begin(), eos.end(), tok) != eos.end()) return true;  // the end marker is not text
      return feed(*out, decoder->push(static_cast<data::TokenId>(tok)), stop);
    }));
    const std::size_t prompt_tokens = ask.prompt.size();
    auto finish = [out, decoder, future, stop]() {  // after generation: flush, mark done, say why it ended
      bool stopped = false;
      try {
        const infer::Completion c = future->get();
        stopped = c.stopped;
        if (!out->stopped) feed(*out, decoder->flush(), stop);
      } catch (...) {
        std::lock_guard<std::mutex> lock(out->mu);
        out->failed = true;
      }
      std::lock_guard<std::mutex> lock(out->mu);
      out->stopped = out->stopped || stopped;
      out->done = true;
      out->cv.notify_all();
    };

    if (!ask.stream) {
      finish();
      if (out->failed) return send_error(res, {500, "server_error", "generation failed", "", ""});
      const std::string text = out->text + out->unsent;
      json choice = {{"index", 0}, {"finish_reason", out->stopped ? "stop" : "length"}};
      if (chat) choice["message"] = {{"role", "assistant"}, {"content", text}};
      else choice["text"] = text, choice["logprobs"] = nullptr;
      json r = {{"id", id}, {"object", chat ? "chat.completion" : "text_completion"}, {"created", std::time(nullptr)}, {"model", name_},
                {"choices", json::array({choice})}, {"usage", usage(prompt_tokens, out->tokens)}};
      res.set_content(r.dump(), "application/json");
      return;
    }
    // Streaming: a thread-free pull: each call of the provider sends what became available.
    auto finisher = std::make_shared<std::thread>(finish);
    auto first = std::make_shared<bool>(true);
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider(
        "text/event-stream",
        [this, out, id, chat, stop, first](std::size_t, httplib::DataSink& sink) {
          std::unique_lock<std::mutex> lock(out->mu);
          out->cv.wait(lock, [&] { return out->done || releasable(*out, stop) > 0; });
          std::string events;
          if (*first && chat) {  // the role comes first, as OpenAI sends it
            json c = chunk(id, true, "", nullptr);
            c["choices"][0]["delta"] = {{"role", "assistant"}, {"content", ""}};
            events += "data: " + c.dump() + "\n\n";
          }
          *first = false;
          const std::size_t n = releasable(*out, stop);
          if (n > 0) {
            const std::string piece = out->unsent.substr(0, n);
            out->text += piece;
            out->unsent.erase(0, n);
            events += "data: " + chunk(id, chat, piece, nullptr).dump() + "\n\n";
          }
          const bool end = out->done && out->unsent.empty();
          if (end) {
            events += "data: " + chunk(id, chat, "", out->stopped ? "stop" : "length").dump() + "\n\n";
            events += "data: [DONE]\n\n";
          }
          lock.unlock();
          if (!sink.write(events.data(), events.size())) {  // the client went away: end its row
            std::lock_guard<std::mutex> l(out->mu);
            out->cancelled = true;
            return false;
          }
          if (end) sink.done();
          return true;
        },
        [finisher](bool) {
          if (finisher->joinable()) finisher->join();
        });
  }

  data::Tokenizer tok_;
  const data::ChatTemplate& tmpl_;
  infer::GenerationOptions defaults_;
  model::Transformer model_;
  infer::BatchWorker worker_;
  std::string name_, api_key_;
  data::RenderOptions render_;
  std::int64_t created_ = std::time(nullptr);
  std::atomic<std::int64_t> next_id_{1};
};

// SIGINT/SIGTERM only set this flag (httplib's stop() is not async-signal-safe); a watcher thread
// sees it and stops the server.
volatile std::sig_atomic_t g_stop = 0;
extern "C" void on_stop(int) { g_stop = 1; }

int run_serve(const po::variables_map& vm) {
  dist::Grid grid(1, 1);
  if (grid.world_size() > 1) util::fail("serve", "runs on one rank", "start it without mpirun");
  Server server(vm);
  httplib::Server svr;
  svr.new_task_queue = [] { return new httplib::ThreadPool(64); };  // waiting requests do not block new ones
  svr.set_payload_max_length(static_cast<std::size_t>(vm["max-body-bytes"].as<std::int64_t>()));
  server.routes(svr);
  const std::string host = vm["host"].as<std::string>();
  int port = vm["port"].as<int>();
  if (port == 0) port = svr.bind_to_any_port(host);
  else if (!svr.bind_to_port(host, port)) port = -1;
  if (port < 0) util::fail("--port", "cannot listen on " + host + ":" + std::to_string(vm["port"].as<int>()), "pick a free port (0: any)");
  g_stop = 0;
  std::signal(SIGINT, on_stop);
  std::signal(SIGTERM, on_stop);
  std::atomic<bool> done{false};
  std::thread watcher([&] {
    while (!done) {
      if (g_stop && svr.is_running()) {  // a signal before listening began waits for it
        svr.stop();
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  std::cerr << "medgpt: serving on http://" << host << ":" << port << std::endl;  // tests read the port from here
  svr.listen_after_bind();
  done = true;
  watcher.join();
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  return 0;
}

}  // namespace

void register_serve_command(std::vector<Command>& out) {
  out.push_back({"serve", "OpenAI-compatible HTTP server: /v1/chat/completions (stream or not), /v1/completions, /v1/models, /health",
                 [](po::options_description& d) {
                   add_generation_options(d);
                   d.add_options()
                       ("host", po::value<std::string>()->default_value("127.0.0.1"), "address to listen on")
                       ("port", in_range(0, 65535)->default_value(8000), "port (0: any free port, printed at start)")
                       ("api-key", po::value<std::string>(), "require `Authorization: Bearer KEY`")
                       ("model-name", po::value<std::string>(), "the model id reported (default: the model folder's name)")
                       ("batch-size", at_least<std::int64_t>(1)->default_value(8), "requests generated together at most")
                       ("max-body-bytes", at_least<std::int64_t>(1)->default_value(1 << 20), "larger request bodies get 413");
                 },
                 run_serve});
}

}  // namespace medgpt::app
